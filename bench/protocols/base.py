"""The protocol type: a named split over a dataset, with its task, its threshold rule and its splits."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Protocol:
    """A named split over a dataset: its task, its threshold rule and a description of each split."""

    name: str
    task: str
    description: str
    threshold_rule: str
    splits: dict = field(default_factory=dict)
