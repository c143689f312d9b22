"""What the leaderboard reads from a stored cell's kind: each kind (bench/cells) owns its labels, whether it is a
transfer cell and from which model, and which attack its example images re-run. Everything else that needs an
attack's nature reads its declared capabilities (`attacks.declares`)."""
from __future__ import annotations

from typing import Optional

from bench.cells import CellKind, kind_of
from bench.store import CellResult


def _kind(cell: CellResult) -> type[CellKind]:
    return kind_of(cell.config)


def attack_label(cell: CellResult) -> str:
    """The attack of a cell as the pages list it: `cascade(a -> b)`, `transfer from X`, else the attack's name."""
    return _kind(cell).stored_label(cell.config, detailed=True)


def transfer_source(cell: CellResult) -> Optional[str]:
    """The model a transfer cell's examples were crafted on (its row in the transfer matrix); None for other kinds."""
    return _kind(cell).transfer_source(cell.config)


def is_transfer(cell: CellResult) -> bool:
    """Whether a cell's examples were crafted on another model (a transfer cell)."""
    return transfer_source(cell) is not None


def example_attack(cell: CellResult) -> Optional[tuple[str, dict, str]]:
    """(attack name, parameters, label) of the attack that example regeneration re-runs for a cell (a cascade: its
    first stage); None for a kind that has none (a transfer cell's examples come from another model)."""
    return _kind(cell).example_attack(cell.config)
