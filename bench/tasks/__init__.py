"""Threat models: what an attacker wants, judged at the stored operating threshold (goals: bench.goals)."""
from bench.tasks.base import MarginClassifier, Task
from bench.tasks.identification import IdentificationTask, IdentityClassifier, gallery_templates
from bench.tasks.spoof import SpoofTask
from bench.tasks.verification import VerificationTask

__all__ = ["IdentificationTask", "IdentityClassifier", "MarginClassifier", "SpoofTask", "Task", "VerificationTask",
           "gallery_templates"]
