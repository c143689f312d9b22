"""Clean evaluation: embeddings, dev operating points and clean metrics, on the item containers of `bench.data.sets`."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from bench.data.sets import FaceSet, FASSet
from bench.metrics import FASRates, OperatingPoint, eer_threshold, fas_rates, threshold_at_far

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
