"""A small generic registry: named entries with a one-line description, timm style."""
from __future__ import annotations

import difflib
from typing import Callable, Dict, Generic, Iterator, TypeVar

from bench.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to entries; lookups of unknown names raise a helpful `UnknownNameError`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: Dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            known = ", ".join(sorted(self._entries)) or "none"
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (known: {known})"
            ) from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._entries)

    def decorator(self, name: str, make: Callable[[object], T]) -> Callable[[object], object]:
        """Return a decorator that registers `make(obj)` under `name` and returns obj unchanged."""

        def wrap(obj: object) -> object:
            self.add(name, make(obj))
            return obj

        return wrap
