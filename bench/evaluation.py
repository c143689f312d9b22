"""Clean evaluation: embeddings, dev operating points and clean metrics, on the item containers of `bench.data.sets`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.data.sets import FaceSet, FASSet, FoldedPairs
from bench.metrics import (FASRates, KFoldVerification, OperatingPoint, eer_threshold, fas_rates, kfold_verification,
                           threshold_at_far)

DEFAULT_FAR = 1e-3


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1] (the convention every model takes)."""
    return torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)


@torch.no_grad()
def embed(model: nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 256) -> torch.Tensor:
    """The model's outputs (embeddings, or liveness logits) on uint8 images, in batches on `device`, on CPU."""
    out = []
    for start in range(0, len(images), batch_size):
        x = images_to_tensor(images[start : start + batch_size]).to(device)
        out.append(model(x).float().cpu())
    return torch.cat(out) if out else torch.zeros(0, 0)


@dataclass(frozen=True)
class FRDevResult:
    operating_point: OperatingPoint
    tar: float
    accuracy: float
    genuine_pairs: int
    impostor_pairs: int

    def as_card(self) -> dict:
        op = self.operating_point
        return {
            "threshold": op.threshold,
            "threshold_rule": op.rule,
            "dev_far": op.achieved_rate,
            "dev_tar": self.tar,
            "dev_accuracy": self.accuracy,
            "dev_genuine_pairs": self.genuine_pairs,
            "dev_impostor_pairs": self.impostor_pairs,
        }

    def describe(self) -> str:
        """The one log line of the calibration (the runner prints it)."""
        op = self.operating_point
        return f"threshold {op.threshold:.4f} ({op.rule}, {op.dev_count} dev pairs); dev TAR {self.tar:.3f}"


def pair_scores(embeddings: torch.Tensor, identities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cosine scores of every genuine and every impostor pair (i < j) in a face set."""
    sims = (embeddings @ embeddings.T).numpy()
    iu, ju = np.triu_indices(len(identities), k=1)
    same = identities[iu] == identities[ju]
    s = sims[iu, ju]
    return s[same], s[~same]


def fr_dev_result(model: nn.Module, dev: FaceSet, device: torch.device, far: float = DEFAULT_FAR) -> FRDevResult:
    """The verification threshold at `far` on every dev impostor pair, and dev TAR / accuracy there."""
    emb = embed(model, dev.images, device)
    genuine, impostor = pair_scores(emb, dev.identities)
    op = threshold_at_far(impostor, far)
    tar = float(np.mean(genuine >= op.threshold))
    return FRDevResult(op, tar, (tar + 1 - op.achieved_rate) / 2, len(genuine), len(impostor))


@dataclass(frozen=True)
class KFoldDevResult:
    """A k-fold protocol's calibration: per fold, the thresholds chosen on the other folds and the held-out rates
    (`bench.metrics.kfold_verification`). Its operating point carries one FAR threshold per fold."""

    kfold: KFoldVerification
    rule: str

    @property
    def operating_point(self) -> OperatingPoint:
        """The per-fold FAR thresholds (index = fold); `threshold` is their mean, a summary (decides nothing)."""
        folds = sorted(self.kfold.folds, key=lambda f: f.fold)
        taus = tuple(float(f.far_point.threshold) for f in folds)
        return OperatingPoint(float(np.mean(taus)), self.rule, sum(f.n_genuine + f.n_impostor for f in folds),
                              self.kfold.far[0], taus)

    def as_card(self) -> dict:
        """The run's `dev_metrics`: mean and std over folds of the held-out accuracy, TAR and FAR, and per fold."""
        k = self.kfold
        folds = sorted(k.folds, key=lambda f: f.fold)
        (acc, acc_sd), (tar, tar_sd), (far, far_sd) = k.accuracy, k.tar, k.far
        return {
            "threshold": self.operating_point.threshold, "threshold_rule": self.rule, "folds": len(folds),
            "far_target": k.far_target, "accuracy_mean": acc, "accuracy_std": acc_sd, "tar_mean": tar, "tar_std": tar_sd,
            "far_mean": far, "far_std": far_sd,
            "genuine_pairs": sum(f.n_genuine for f in folds), "impostor_pairs": sum(f.n_impostor for f in folds),
            "fold_thresholds": [f.far_point.threshold for f in folds],
            "fold_accuracy_thresholds": [f.accuracy_threshold for f in folds],
            "fold_accuracy": [f.accuracy for f in folds], "fold_tar": [f.tar for f in folds], "fold_far": [f.far for f in folds],
        }

    def describe(self) -> str:
        """The one log line of the calibration (the runner prints it)."""
        taus = self.operating_point.fold_thresholds
        return f"{self.kfold.describe()}; thresholds {min(taus):.4f} to {max(taus):.4f} ({self.rule})"


def kfold_dev_result(model: nn.Module, pairs: FoldedPairs, device: torch.device, far: float, rule: str) -> KFoldDevResult:
    """Every image embedded once, every pair scored (cosine), then `kfold_verification` at `far`."""
    emb = embed(model, pairs.images, device)
    first, second = torch.as_tensor(pairs.first), torch.as_tensor(pairs.second)
    scores = (emb[first] * emb[second]).sum(dim=1).numpy()
    return KFoldDevResult(kfold_verification(scores, np.asarray(pairs.genuine, dtype=bool), pairs.folds, far), rule)


def liveness_scores(model: nn.Module, images: np.ndarray, device: torch.device, batch_size: int = 256) -> np.ndarray:
    """Frame-level liveness logits of uint8 images."""
    return embed(model, images, device, batch_size).reshape(-1).numpy()


@dataclass(frozen=True)
class FASDevResult:
    operating_point: OperatingPoint
    rates: FASRates

    def as_card(self) -> dict:
        op = self.operating_point
        return {"threshold": op.threshold, "threshold_rule": op.rule, "dev_eer": op.achieved_rate,
                "dev_acer": self.rates.acer, "dev_hter": self.rates.hter, "dev_frames": op.dev_count}

    def describe(self) -> str:
        """The one log line of the calibration (the runner prints it)."""
        op = self.operating_point
        return f"threshold {op.threshold:.4f} ({op.rule}, {op.dev_count} dev frames); dev ACER {self.rates.acer:.3f}"


def fas_dev_result(model: nn.Module, dev: FASSet, device: torch.device) -> FASDevResult:
    """The dev-set EER threshold (frame level) and the dev error rates there."""
    s = liveness_scores(model, dev.images, device)
    op = eer_threshold(s[dev.live], s[~dev.live])
    return FASDevResult(op, fas_rates(s, dev.live, dev.species, op.threshold))


def fas_test_metrics(model: nn.Module, test: FASSet, device: torch.device, threshold: float) -> dict:
    """Clean error rates of an anti-spoofing model on a whole test split at the dev threshold
    (stored with the run: the leaderboard's cross-domain generalization figures)."""
    r = fas_rates(liveness_scores(model, test.images, device), test.live, test.species, threshold)
    live, spoof = int(r.n_live), int(r.n_attack)
    return {"split": "test", "threshold": threshold, "frames_live": live, "frames_spoof": spoof,
            "apcer": r.apcer, "apcer_pooled": r.apcer_pooled, "apcer_per_species": r.apcer_per_species,
            "apcer_pooled_k": int(round(r.apcer_pooled * spoof)) if spoof else 0,
            "bpcer": r.bpcer, "bpcer_k": int(round(r.bpcer * live)) if live else 0, "acer": r.acer, "hter": r.hter}
