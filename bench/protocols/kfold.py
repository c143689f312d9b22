"""k-fold verification protocols: a fixed list of pairs in folds, evaluated the way the field evaluates LFW View 2
and insightface's validation sets (`lfw.bin`, `agedb_30.bin`, ...).

Nothing is trained on them. `calibrate` embeds every image once, scores every pair (cosine) and, for each fold,
chooses on the *other* folds' pairs the best-accuracy threshold and the threshold at the protocol's FAR
(`bench.metrics.kfold_verification`): the clean figures are the held-out folds' mean and std, and no fold's threshold
ever saw its own pairs. The goals' items are pairs drawn evenly across the folds (`choose_across_folds`); each is
judged at its own fold's FAR threshold, which its `VerificationTask` carries per pair. The cells store each pair's
fold in its sample id (`f<fold>:...`), so the leaderboard can pool the folds and show their spread.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Sequence, Union

import numpy as np
import torch

from bench.data.sets import FaceSet, FoldedPairs, PairSet, choose_across_folds
from bench.errors import BadInputError
from bench.evaluation import DEFAULT_FAR, KFoldDevResult, embed, images_to_tensor, kfold_dev_result
from bench.goals import GOALS
from bench.protocols.fr import FRProtocol
from bench.tasks.items import GoalItems
from bench.tasks.verification import VerificationTask

FOLDS = 10


@dataclass(frozen=True)
class KFoldProtocol(FRProtocol):
    """A verification protocol over pairs in folds. Subclasses say where the pairs and images come from
    (`pair_folds`, `read_images`)."""

    far: float = DEFAULT_FAR

    def pair_folds(self) -> FoldedPairs:
        """The pairs, their labels and folds, without images."""
        raise NotImplementedError

    def read_images(self, numbers: Sequence[int], size: int) -> np.ndarray:
        """The images `numbers` (of the numbering `pair_folds` uses) as uint8 RGB (n, size, size, 3)."""
        raise NotImplementedError

    @property
    def rule(self) -> str:
        """The operating point's rule, stored with every cell."""
        return f"FAR={self.far:g} on the other {FOLDS - 1} folds, per fold"

    def train_set(self, size: int) -> FaceSet:
        raise BadInputError(f"protocol {self.name!r} is for evaluation only: it has no training split "
                            "(train on another protocol, e.g. celeba->lfw or synth-fr)")

    def dev_set(self, size: int) -> FaceSet:
        raise BadInputError(f"protocol {self.name!r} has no dev face set: its thresholds are chosen fold by fold "
                            "on the other folds' pairs")

    def test_pairs(self, kind: str, n: int | None, seed: int, size: int) -> PairSet:
        """`n` pairs of `kind` spread evenly across the folds (as the goals draw them)."""
        pairs = self.pair_folds()
        pick = self._pick(pairs, kind, n, seed)
        return PairSet(self.read_images(pairs.first[pick], size), self.read_images(pairs.second[pick], size),
                       pairs.genuine[pick], pairs.sample_ids(pick))

    def dev_split(self, size: int) -> FoldedPairs:
        """Every pair with every image it uses: what `calibrate` scores."""
        pairs = self.pair_folds()
        count = int(max(pairs.first.max(), pairs.second.max())) + 1
        return replace(pairs, images=self.read_images(np.arange(count), size))

    def calibrate(self, model: torch.nn.Module, dev_split: FoldedPairs, device: torch.device) -> KFoldDevResult:
        """Each fold's thresholds chosen on the other folds' pairs; held-out accuracy, TAR and FAR per fold."""
        return kfold_dev_result(model, dev_split, device, self.far, self.rule)

    def goal_items(self, goal: str, model: torch.nn.Module, threshold: Union[float, Sequence[float]], samples: int,
                   seed: int, size: int, device: torch.device) -> GoalItems:
        """Pairs of the goal's kind spread evenly across the folds, each judged at its fold's threshold (`threshold`:
        one per fold, index = fold, as `calibrate`'s operating point gives them)."""
        spec = GOALS.get(goal)
        if spec is None or spec.items != "pairs":
            return super().goal_items(goal, model, threshold, samples, seed, size, device)
        taus = np.atleast_1d(np.asarray(threshold, dtype=np.float64))
        if taus.size != FOLDS:
            raise BadInputError(f"protocol {self.name!r} judges each fold at its own threshold: expected {FOLDS} fold "
                                f"thresholds (from its calibration), got {taus.size}")
        pairs = self.pair_folds()
        pick = self._pick(pairs, spec.select, samples, seed)
        probes, refs = self.read_images(pairs.first[pick], size), self.read_images(pairs.second[pick], size)
        task = VerificationTask(model, embed(model, refs, device).to(device),
                                torch.as_tensor(taus[pairs.folds[pick]], dtype=torch.float32, device=device), goal)
        if spec.wants == "accept":  # impersonation: the reference image scores 1 against its own embedding
            task = task.with_starts(images_to_tensor(refs).to(device))
        return GoalItems(goal, images_to_tensor(probes).to(device), task, pairs.sample_ids(pick),
                         rule=f"each pair at its fold's threshold ({self.rule})")

    def _pick(self, pairs: FoldedPairs, kind: str, n: int | None, seed: int) -> np.ndarray:
        """Positions of `n` pairs of `kind`, spread evenly across the folds and chosen by `seed`."""
        if kind not in ("genuine", "impostor"):
            raise BadInputError(f"unknown pair kind {kind!r} (genuine or impostor)")
        pool = np.flatnonzero(pairs.genuine == (kind == "genuine"))
        return pool[choose_across_folds(pairs.folds[pool], n, seed, 0 if kind == "genuine" else 1)]
