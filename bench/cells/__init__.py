"""Cell kinds: what a suite entry is, and how its cells are planned, configured, computed, merged and labelled.

Importing this package registers the built-in kinds (a plain attack, a cascade, a transfer row); a new kind
is one module with a `CellKind` subclass decorated with `register_cell_kind` (docs/architecture.md).
"""
from bench.cells.base import (CELL_KINDS, PLAIN, CellInputs, CellKind, CellOutput, PlannedCell, entry_from_dict, kind_of,
                              register_cell_kind)
from bench.cells.attack import AttackEntry, attack_cell, attack_cells_together
from bench.cells.cascade import CascadeEntry, Stage, cascade_cell
from bench.cells.transfer import NoStopTask, TransferEntry, transfer_cell

__all__ = ["CELL_KINDS", "PLAIN", "AttackEntry", "CascadeEntry", "CellInputs", "CellKind", "CellOutput", "NoStopTask",
           "PlannedCell", "Stage", "TransferEntry", "attack_cell", "attack_cells_together", "cascade_cell",
           "entry_from_dict", "kind_of", "register_cell_kind", "transfer_cell"]
