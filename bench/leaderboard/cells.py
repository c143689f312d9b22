"""What the leaderboard reads from a cell's kind (a plain attack, a cascade, a transfer).

These small functions are the only places in the leaderboard that look at which kind of cell a stored
configuration describes. They are kept together so that they can be re-pointed, in this one module, at
the cell-kind registry (`bench.cells`) where each kind will own its labels. Everything else that needs an
attack's nature reads its declared capabilities (`attacks.declares`).
"""
from __future__ import annotations

from bench.store import CellResult


def attack_label(cell: CellResult) -> str:
    """The attack of a cell as the pages list it: `cascade(a -> b)`, `transfer from X`, else the attack's name."""
    c = cell.config
    if c["attack"] == "transfer":
        return f"transfer from {c['params'].get('source', '?')}"
    if c["attack"] == "cascade":
        return "cascade(" + " -> ".join(st["attack"] for st in c["params"].get("stages", [])) + ")"
    return c["attack"]


def is_transfer(cell: CellResult) -> bool:
    """Whether a cell's examples were crafted on another model (a transfer cell)."""
    return cell.config["attack"] == "transfer"


def transfer_source(cell: CellResult) -> str:
    """The model a transfer cell's examples were crafted on (its row in the transfer matrix)."""
    return str(cell.config["params"].get("source"))


def example_attack(cell: CellResult) -> tuple[str, dict, str]:
    """(attack name, parameters, label) of the attack that example regeneration re-runs for a (non-transfer)
    cell: a cascade contributes its first stage's attack, any other cell its own."""
    if cell.config["attack"] == "cascade":
        stage = cell.config["params"]["stages"][0]
        return stage["attack"], stage["params"], f"{stage['attack']} (cascade stage 1)"
    return cell.config["attack"], cell.config["params"], cell.config["attack"]
