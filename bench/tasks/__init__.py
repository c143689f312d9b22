"""Threat models: what an attacker wants, judged at the stored operating threshold."""
from bench.tasks.base import MarginClassifier, Task
from bench.tasks.identification import IdentificationTask, IdentityClassifier, gallery_templates
from bench.tasks.spoof import SpoofTask
from bench.tasks.verification import VerificationTask

GOALS: dict[str, str] = {
    "dodging": "fr",
    "impersonation": "fr",
    "misidentify": "fr",
    "target-identity": "fr",
    "spoof-to-live": "fas",
    "live-to-spoof": "fas",
}
DEFAULT_GOALS: dict[str, tuple[str, ...]] = {
    "fr": ("dodging", "impersonation"),
    "fas": ("spoof-to-live",),
}

__all__ = ["GOALS", "DEFAULT_GOALS", "IdentificationTask", "IdentityClassifier", "MarginClassifier", "SpoofTask", "Task",
           "VerificationTask", "gallery_templates"]
