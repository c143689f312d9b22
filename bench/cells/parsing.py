"""Reading the parts every suite entry's YAML form shares: budgets and parameters."""
from __future__ import annotations

from bench.config import parse_eps
from bench.errors import BadInputError


def eps_of(item: dict, where: str) -> tuple[float, ...]:
    """The entry's budgets: `eps` as one value or a list (`8/255`, `0.5`)."""
    if "eps" not in item:
        raise BadInputError(f"{where} needs 'eps'")
    eps = item["eps"] if isinstance(item["eps"], list) else [item["eps"]]
    if not eps:
        raise BadInputError(f"{where}: 'eps' is empty")
    try:
        return tuple(parse_eps(e) for e in eps)
    except BadInputError as e:
        raise BadInputError(f"{where}: {e}") from None


def params_of(item: dict, where: str) -> dict:
    """The entry's attack parameters: a mapping (none when absent)."""
    params = item.get("params") or {}
    if not isinstance(params, dict):
        raise BadInputError(f"{where}: 'params' must be a mapping, got {params!r}")
    return dict(params)


def check_keys(item: dict, allowed: set, where: str) -> None:
    """Refuse keys a part of an entry does not know."""
    unknown = set(item) - allowed
    if unknown:
        raise BadInputError(f"{where} has unknown keys {sorted(unknown)} (allowed: {', '.join(sorted(allowed))})")
