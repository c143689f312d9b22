"""The attack registry, the native engine and the suites."""
from attacks.base import Attack, AttackOutput
from attacks.registry import ATTACKS, make_attack, register_attack
from attacks import native  # noqa: F401  (registers the native attacks)
from attacks import backends  # noqa: F401  (registers the ART / foolbox / torchattacks adapters)
from attacks.suites import SUITES, Suite, SuiteEntry, load_suite

__all__ = ["ATTACKS", "Attack", "AttackOutput", "SUITES", "Suite", "SuiteEntry", "load_suite", "make_attack", "register_attack"]
