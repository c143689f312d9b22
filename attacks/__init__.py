"""The attack registry, the native engine and the library adapters (suites of attacks: bench.suites)."""
from attacks.base import Attack, AttackOutput
from attacks.registry import ATTACKS, declares, make_attack, register_attack
from attacks import native  # noqa: F401  (registers the native attacks)
from attacks import backends  # noqa: F401  (registers the ART / foolbox / torchattacks adapters)
from attacks.native.minimal import minimal_eps, success_curve
from attacks.native.transfer import TransferOutput, transfer

__all__ = ["ATTACKS", "Attack", "AttackOutput", "declares", "make_attack",
           "minimal_eps", "register_attack", "success_curve", "transfer", "TransferOutput"]
