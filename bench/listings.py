"""What `facebench models`, `attacks`, `suites` and `protocols` list, and the names `run` checks first, as plain
data: built from the registries themselves, and kept in `bench/listings.json` so that the CLI answers those
commands and refuses a mistyped name without importing torch (docs/performance.md, start-up time).

`build()` imports the registries (models_zoo, attacks, bench.suites, bench.protocols) and returns what the
listings show of each entry; `python -m bench.listings` writes it to `LISTINGS_FILE`. tests/test_startup.py
fails when the file differs from `build()`: after adding, changing or removing a variant, an attack, a suite or a
protocol, regenerate it (`facebench train` and `zoo build` do it themselves when they overwrite shipped
weights). `current()` is what the CLI reads: the registries' own data when this process has already imported one
of them (a test or a notebook may have registered an entry since), else the file.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

from bench.errors import BadInputError
from bench.modelref import check_flip_tta, check_model, check_protocol_task
from bench.config import write_atomic
from bench.registry import Registry
from bench.runconfig import RunConfig, validate_config

LISTINGS_FILE = Path(__file__).with_name("listings.json")
REGISTRY_MODULES = ("models_zoo", "attacks", "bench.suites", "bench.protocols")
"""The packages whose import registers the entries (and imports torch)."""


def _models() -> dict:
    from bench.goals import PROFILES
    from models_zoo import VARIANTS
    from models_zoo.checkpoint import shipped_weights
    from models_zoo.factory import card_for

    entries = []
    for name in VARIANTS:
        spec = VARIANTS.get(name)
        entries.append({
            "name": name, "task": spec.task, "description": spec.description, "input_size": dict(spec.input_size),
            "default_protocol": spec.default_protocol,
            "parameters": {p: spec.parameter_count(p) for p in PROFILES},
            # the dev metrics of the shipped weights' cards, per profile with shipped weights
            "shipped": {p: card_for(name, p).get("dev", {}) for p in PROFILES if shipped_weights(name, p) is not None},
            # an external entry: where its weights come from (whether they are installed is asked when listed)
            **({"external": spec.external.listing()} if spec.external is not None else {}),
        })
    return {"kind": VARIANTS.kind, "entries": entries}


def _attacks() -> dict:
    from attacks import ATTACKS
    from attacks.registry import describe_params

    entries = [{"name": name, "backend": ATTACKS.get(name).backend, "norms": list(ATTACKS.get(name).norms),
                "parameters": describe_params(name), "description": ATTACKS.get(name).description} for name in ATTACKS]
    return {"kind": ATTACKS.kind, "entries": entries}


def _suites() -> dict:
    from bench.config import format_eps
    from bench.suites import SUITES

    entries = []
    for name in SUITES:
        suite = SUITES.get(name)
        entries.append({
            "name": name, "description": suite.description, "budgets": suite.budgets(),
            "entries": [{"kind": e.kind, "label": e.label(), "norm": e.norm, "budgets": [format_eps(e.norm, v) for v in e.eps],
                         "goals": list(e.goals) if e.goals is not None else "all"}
                        for e in suite.entries],
        })
    return {"kind": SUITES.kind, "entries": entries}


def _protocols() -> dict:
    from bench.protocols import PROTOCOLS, FASProtocol
    from bench.protocols.registry import PROTOCOL_FAMILIES

    families = {PROTOCOL_FAMILIES.get(f).listed.name: f for f in PROTOCOL_FAMILIES}
    entries = []
    for name in PROTOCOLS:
        p = PROTOCOLS.get(name)
        entries.append({"name": name, "task": p.task, "description": p.description,
                        "splits": {k: str(v) for k, v in p.splits.items()}, "threshold_rule": p.threshold_rule,
                        "frames_per_video": p.frames_per_video if isinstance(p, FASProtocol) else None,
                        **({"family": families[name]} if name in families else {})})
    return {"kind": PROTOCOLS.kind, "entries": entries}


def build() -> dict:
    """The listings from the registries themselves (imports them all, torch with them)."""
    return {"models": _models(), "attacks": _attacks(), "suites": _suites(), "protocols": _protocols()}


def dumps(listings: dict) -> str:
    """The file's text (keys in the order `build` gives them: the listings show splits and profiles in it)."""
    return json.dumps(listings, indent=1) + "\n"


def registries_loaded() -> bool:
    """Whether this process has imported a registry (then its entries may differ from the file's)."""
    return any(m in sys.modules for m in REGISTRY_MODULES)


def current() -> dict:
    """The listings the CLI shows: from the registries when already imported, else from `LISTINGS_FILE`."""
    if registries_loaded() or not LISTINGS_FILE.is_file():
        return build()
    return json.loads(LISTINGS_FILE.read_text())


def registry(listings: dict, what: str) -> Registry:
    """One listing as a `Registry` of records (attribute access), named as the real registry is: the same
    'unknown ...' message for a name that is not there."""
    out: Registry = Registry(listings[what]["kind"])
    for entry in listings[what]["entries"]:
        out.add(entry["name"], SimpleNamespace(**entry))
    return out


def check_run(cfg: RunConfig) -> None:
    """Refuse the mistakes a `run` command line shows by its names and options alone, from the file, before the
    runner (and torch) is imported, in the runner's order: the model and its options (`bench.modelref.check_model`),
    an unknown suite name, an unknown protocol or one of the other task, the numeric and execution options
    (`bench.runconfig.validate_config`). The runner checks all of them again with the rest (a user's factory, a
    suite's YAML file, goals, transfer sources, the store), and alone when the registries are loaded."""
    if registries_loaded() or not LISTINGS_FILE.is_file():
        return
    listings = json.loads(LISTINGS_FILE.read_text())
    choice = check_model(cfg.model, registry(listings, "models"), cfg.task, cfg.profile, cfg.input_size, cfg.name,
                         cfg.preprocess)
    if cfg.suite.endswith((".yaml", ".yml")):  # a file: the runner reads and checks it before the rest
        return
    registry(listings, "suites").get(cfg.suite)
    proto = protocol_entry(listings, cfg.protocol or choice.default_protocol)
    check_protocol_task(choice, cfg.protocol or choice.default_protocol, proto.task)
    check_flip_tta(choice, cfg.flip_tta)
    validate_config(cfg)


def protocol_entry(listings: dict, name: str) -> SimpleNamespace:
    """The listing of protocol `name`: its own entry, or its family's (`bin:/x.bin` -> `bin:PATH`); an unknown name
    gets the registry's message."""
    protocols = registry(listings, "protocols")
    prefix, sep, _ = name.partition(":")
    family = next((e for e in listings["protocols"]["entries"] if e.get("family") == prefix), None) if sep else None
    return SimpleNamespace(**family) if family is not None else protocols.get(name)


def refresh_after_training(written: list[Path]) -> Optional[Path]:
    """Rewrite `LISTINGS_FILE` after `facebench train` or `zoo build` wrote `written` weights, when one of them is a
    shipped checkpoint (the model listing quotes each shipped card's dev metrics) and the file no longer matches the
    registries. Returns the file when it was rewritten. Weights written elsewhere (`--out`) leave it alone."""
    from models_zoo.checkpoint import in_shipped_folder

    if not any(in_shipped_folder(w) for w in written):
        return None
    return LISTINGS_FILE if _write_if_stale(dumps(build())) else None


def _holds(text: str) -> bool:
    """Whether `LISTINGS_FILE` holds `text` already."""
    return LISTINGS_FILE.is_file() and LISTINGS_FILE.read_text(encoding="utf-8") == text


def _write_if_stale(text: str) -> bool:
    """Write `text` to `LISTINGS_FILE` unless it holds it already (a committed file keeps its timestamp); whole or
    not at all, as the CLI reads the file on every start. Returns whether it wrote."""
    if _holds(text):
        return False
    write_atomic(LISTINGS_FILE, text)
    return True


def main(argv: Optional[list[str]] = None) -> int:
    """`python -m bench.listings`: rewrite LISTINGS_FILE from the registries; `--check`: exit 1 when it differs."""
    argv = sys.argv[1:] if argv is None else argv
    if argv not in ([], ["--check"]):
        raise BadInputError("usage: python -m bench.listings [--check]")
    text = dumps(build())
    if argv == ["--check"]:
        fresh = _holds(text)
        print(f"{LISTINGS_FILE} is {'up to date' if fresh else 'stale: run python -m bench.listings'}")
        return 0 if fresh else 1
    print(f"{'wrote' if _write_if_stale(text) else 'up to date:'} {LISTINGS_FILE}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
