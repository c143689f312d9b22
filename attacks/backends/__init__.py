"""Library backends: ART, foolbox and torchattacks attacks run on any task through `as_classifier()`.

Importing this package registers the adapters; the libraries themselves are imported only when an
attack runs (a library that cannot be imported fails that attack with one clear line).
"""
from attacks.backends import art_attacks, foolbox_attacks, torchattacks_attacks  # noqa: F401
from attacks.backends.common import BackendAttack, BackendUnavailableError

__all__ = ["BackendAttack", "BackendUnavailableError"]
