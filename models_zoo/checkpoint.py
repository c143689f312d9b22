"""Checkpoints: safetensors weights plus a JSON model card. Nothing is ever unpickled."""
from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Optional

from safetensors import SafetensorError
from safetensors.torch import load_file, save
from torch import nn

from bench.config import sha256_file, write_atomic
from bench.errors import CheckpointError

WEIGHTS_DIR = Path(__file__).parent / "weights"


def card_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_checkpoint(model: nn.Module, card: dict, weights: Path) -> dict:
    """Write `weights` (.safetensors) and its card (.json) beside it; returns the completed card."""
    weights = Path(weights)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    data = save(state)
    write_atomic(weights, data)  # a weights file read whole or not at all, with a normal file's mode
    card = dict(card)
    card["sha256"] = hashlib.sha256(data).hexdigest()
    card["parameters"] = int(sum(p.numel() for p in model.parameters()))
    write_atomic(card_path(weights), json.dumps(card, indent=2, sort_keys=True) + "\n")  # a card read whole or not at all
    return card


TORCH_PICKLE_PROTOCOLS = range(2, 6)  # torch.save's legacy format: a pickle stream, protocol 2 to 5


def torch_pickle_format(path: Path) -> Optional[str]:
    """'zip' or 'pickle' when `path` is a PyTorch `torch.save` file (never unpickled: read by its magic bytes and,
    for a zip, its member names); None otherwise. A safetensors file starts with its header's length (8 bytes)
    and then the header's '{', which no pickle stream has; a zip is torch's only with a `data.pkl` in it."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return None
    if head[:4] == b"PK\x03\x04":
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError, ValueError):
            return None
        # torch.save names its members <archive>/data.pkl ('archive' or the file's stem)
        return "zip" if any(n == "data.pkl" or (n.endswith("/data.pkl") and n.count("/") == 1) for n in names) else None
    if len(head) == 9 and head[0] == 0x80 and head[1] in TORCH_PICKLE_PROTOCOLS and head[8:9] != b"{":
        return "pickle"
    return None


def refuse_torch_pickle(weights: Path) -> None:
    """A one-line CheckpointError that says how to convert a PyTorch pickle checkpoint to safetensors."""
    kind = torch_pickle_format(weights)
    if kind is None:
        return
    target = Path(weights).with_suffix(".safetensors")
    raise CheckpointError(
        f"checkpoint {weights} is a PyTorch {'zip' if kind == 'zip' else 'legacy pickle'} file (torch.save), not "
        f"safetensors, and facebench never unpickles; convert it once: python -c \"import torch; from safetensors.torch "
        f"import save_file; sd = torch.load('{weights}', map_location='cpu', weights_only=True); "
        f"save_file({{k: v.contiguous() for k, v in sd.items()}}, '{target}')\" (if it holds more than the weights, "
        f"e.g. {{'state_dict': ...}}, save that entry)"
    )


def read_card(weights: Path) -> dict:
    path = card_path(Path(weights))
    if not path.exists():
        raise CheckpointError(f"model card {path} is missing (every checkpoint needs its .json card)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"model card {path} is not valid JSON: {e}") from None


def load_weights(model: nn.Module, weights: Path, expected_sha256: Optional[str] = None) -> str:
    """Load safetensors weights into `model` with a strict match; returns the file's sha256."""
    weights = Path(weights)
    if not weights.exists():
        raise CheckpointError(f"checkpoint {weights} does not exist")
    refuse_torch_pickle(weights)
    digest = sha256_file(weights)
    if expected_sha256 is not None and digest != expected_sha256:
        raise CheckpointError(
            f"checkpoint {weights} has sha256 {digest[:12]}... but its card says {expected_sha256[:12]}... (corrupted or replaced)"
        )
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(f"checkpoint {weights} is not a readable safetensors file: {e}") from None
    expected = model.state_dict()
    shapes = [f"{k} {tuple(state[k].shape)} in the checkpoint vs {tuple(v.shape)} in the model"
              for k, v in expected.items() if k in state and tuple(state[k].shape) != tuple(v.shape)]
    if shapes:  # torch refuses these too, but not in a message that fits on one line
        missing = [k for k in expected if k not in state]
        unexpected = [k for k in state if k not in expected]
    else:
        try:
            # strict=False only so that a mismatch can be reported by key name; any mismatch is still refused
            result = model.load_state_dict(state, strict=False)
        except RuntimeError as e:
            first = str(e).strip().splitlines()[0] if str(e).strip() else "state dict mismatch"
            raise CheckpointError(f"checkpoint {weights} does not match the architecture: {first}") from None
        missing, unexpected = result.missing_keys, result.unexpected_keys
    problems = [f"{what} {_few(keys)}" for what, keys in
                (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatch", shapes)) if keys]
    if problems:
        raise CheckpointError(f"checkpoint {weights} does not match the architecture: {'; '.join(problems)}")
    return digest


def _few(names: list[str], n: int = 3) -> str:
    """A few names of a long list, for a one-line error."""
    shown = ", ".join(names[:n])
    return shown + (f" (+{len(names) - n} more)" if len(names) > n else "")


def load_checkpoint(model: nn.Module, weights: Path, variant: Optional[str] = None, profile: Optional[str] = None) -> dict:
    """Load a zoo checkpoint: its card must name this variant / profile and its sha256 must match."""
    refuse_torch_pickle(weights)  # before asking for its card: a .pt file has none
    card = read_card(weights)
    if variant is not None and card.get("variant") != variant:
        raise CheckpointError(f"checkpoint {weights} is for variant {card.get('variant')!r}, not {variant!r}")
    if profile is not None and card.get("profile") != profile:
        raise CheckpointError(f"checkpoint {weights} is for profile {card.get('profile')!r}, not {profile!r}")
    load_weights(model, weights, card.get("sha256"))
    return card


def zoo_weights_file(folder: Path, variant: str, profile: str) -> Path:
    """Where a zoo weights folder (the shipped one, `results/weights/`, a `zoo build --out`) keeps `variant` at
    `profile`: `<variant>-<profile>.safetensors`."""
    return Path(folder) / f"{variant}-{profile}.safetensors"


def shipped_weights(variant: str, profile: str = "tiny") -> Optional[Path]:
    """The weights shipped in the repository for `variant` at `profile`, if any."""
    path = zoo_weights_file(WEIGHTS_DIR, variant, profile)
    return path if path.exists() else None


def in_shipped_folder(weights: Path) -> bool:
    """Whether `weights` lies in the shipped weights' folder (written there, it replaces shipped weights)."""
    return Path(weights).resolve().parent == WEIGHTS_DIR.resolve()


def training_modules(model: nn.Module) -> list[str]:
    """Names of the submodules in train mode ('<model>' is the model itself)."""
    return [name or "<model>" for name, m in model.named_modules() if m.training]


def model_eval(model: nn.Module) -> nn.Module:
    """Evaluation mode with gradients off for parameters (attacks need input gradients only)."""
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


__all__ = [
    "load_checkpoint",
    "load_weights",
    "model_eval",
    "read_card",
    "refuse_torch_pickle",
    "save_checkpoint",
    "sha256_file",
    "shipped_weights",
    "torch_pickle_format",
    "training_modules",
]
