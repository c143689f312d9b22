"""Face-recognition protocols: face sets to train and calibrate on, verification pairs and identification items."""
from __future__ import annotations

import torch

from bench.data.sets import FaceSet, IdentificationSet, PairSet
from bench.errors import BadInputError
from bench.evaluation import FRDevResult, embed, fr_dev_result, images_to_tensor
from bench.goals import GOALS
from bench.protocols.base import Protocol
from bench.tasks.identification import DECISION_RULE, IdentificationTask, gallery_templates
from bench.tasks.items import GoalItems
from bench.tasks.starts import identification_starts
from bench.tasks.verification import VerificationTask


class FRProtocol(Protocol):
    """A face-verification protocol: train and dev face sets, and genuine / impostor test pairs.

    The threshold is fitted on the dev faces' pairs (`calibrate`); the goals' items are test pairs
    (`pairs` goals) or a gallery with probes (`identification` goals, where the protocol can form them).
    """

    def train_set(self, size: int) -> FaceSet:
        raise NotImplementedError

    def dev_set(self, size: int) -> FaceSet:
        raise NotImplementedError

    def test_pairs(self, kind: str, n: int | None, seed: int, size: int) -> PairSet:
        raise NotImplementedError

    def identification(self, n: int | None, seed: int, size: int) -> IdentificationSet:
        """Gallery and `n` probes from the test identities, chosen by `seed` (protocols that can form them)."""
        raise BadInputError(f"protocol {self.name!r} does not provide identification items (gallery and probes); "
                            "use synth-fr for the misidentify and target-identity goals")

    def dev_split(self, size: int) -> FaceSet:
        return self.dev_set(size)

    def calibrate(self, model: torch.nn.Module, dev_split: FaceSet, device: torch.device) -> FRDevResult:
        """The verification threshold at FAR 1e-3 on every dev impostor pair, and dev TAR / accuracy there."""
        return fr_dev_result(model, dev_split, device)

    def goal_items(self, goal: str, model: torch.nn.Module, threshold: float, samples: int, seed: int, size: int,
                   device: torch.device) -> GoalItems:
        spec = GOALS.get(goal)
        kind = spec.items if spec is not None else None
        if kind == "pairs":
            return self._pair_items(goal, spec.select, model, threshold, samples, seed, size, device)
        if kind == "identification":
            return self._identification_items(goal, model, samples, seed, size, device)
        return super().goal_items(goal, model, threshold, samples, seed, size, device)

    def _pair_items(self, goal: str, select: str, model: torch.nn.Module, threshold: float, samples: int, seed: int,
                    size: int, device: torch.device) -> GoalItems:
        """Test pairs of kind `select`: the probes are attacked against the references' embeddings."""
        pairs = self.test_pairs(select, samples, seed, size)
        refs = embed(model, pairs.references, device).to(device)
        x = images_to_tensor(pairs.probes).to(device)
        task = VerificationTask(model, refs, threshold, goal)
        if GOALS[goal].wants == "accept":  # impersonation: the reference image scores 1 against its own embedding
            task = task.with_starts(images_to_tensor(pairs.references).to(device))
        return GoalItems(goal, x, task, list(pairs.pair_ids))

    def _identification_items(self, goal: str, model: torch.nn.Module, samples: int, seed: int, size: int,
                              device: torch.device) -> GoalItems:
        """Probes attacked against the gallery's identity templates (top-1, no threshold)."""
        ident = self.identification(samples, seed, size)
        k = len(ident.identities)
        templates = gallery_templates(embed(model, ident.gallery, device), torch.as_tensor(ident.gallery_labels), k).to(device)
        labels = torch.as_tensor(ident.probe_labels, device=device)
        targets = torch.as_tensor(ident.targets, device=device) if GOALS[goal].wants == "target-identity" else None
        x = images_to_tensor(ident.probes).to(device)
        starts = images_to_tensor(ident.gallery[identification_starts(ident, goal)]).to(device)
        task = IdentificationTask(model, templates, labels, goal, targets).with_starts(starts)
        return GoalItems(goal, x, task, list(ident.probe_ids), rule=f"{DECISION_RULE}, {k} identities")
