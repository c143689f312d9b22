"""The model catalogue of the leaderboard: each run's model, its parameter count and training recipe.

Read from the zoo registry and from the model card of the weights the run evaluated (matched by sha256);
a user model's factory is never imported to render a leaderboard. An external entry (weights from an installed
package, not trained by facebench) is marked as such: its recipe says `external` and where the weights come from,
its description its origin, licence, input convention and native threshold.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional



@dataclass
class ModelInfo:
    """What the pages say about a run's model: parameters, recipe (short and long), citation, training."""

    params: Optional[int]
    recipe: str  # short, for the table
    description: str  # long, for the models section
    citation: str = ""
    trained_on: str = ""  # the protocol the evaluated weights were trained on (model card)
    training_command: str = ""
    external: str = ""  # an external model: where its weights come from (empty for models facebench trains)


_INFO_CACHE: dict[tuple, ModelInfo] = {}


def _card_for(run: dict) -> dict:
    """The model card of the weights the run evaluated (matched by sha256), or {}."""
    from models_zoo.factory import card_for

    return card_for(str(run["model"]), str(run["profile"]) if run.get("profile") else None,
                    sha256=str(run.get("checkpoint_sha256") or ""), checkpoint=str(run.get("checkpoint") or "") or None,
                    zoo=run.get("source") != "user")


def _shorten(text: str, limit: int = 70) -> str:
    for sep in ("; ", " ("):
        head = text.split(sep)[0]
        if 20 <= len(head) < len(text):
            text = head
            break
    if len(text) > limit:
        text = text[:limit].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return text


def recipe_of(description: str, card: dict, task: str) -> str:
    """A short recipe: the variant's description cut short, plus what its model card says about training."""
    parts = [_shorten(description)] if description else []
    training = card.get("training") if isinstance(card.get("training"), dict) else {}
    adv = training.get("adversarial")
    if isinstance(adv, dict):
        parts.append(f"adv. training PGD-{adv.get('steps', '?')} {adv.get('norm', '')} {adv.get('eps', '')}".rstrip())
    elif card and task == "fr":
        parts.append("no adv. training")
    if training.get("pretrain") and training.get("pretrain") != "none":
        parts.append(f"pre-training: {training['pretrain']}")
    if training.get("label_fraction"):
        parts.append(f"labels {100 * float(training['label_fraction']):g} %")
    if card.get("epochs"):
        parts.append(f"{card['epochs']} epochs")
    return "; ".join(parts) or "-"


def model_info(run: dict) -> ModelInfo:
    """Parameters and recipe of a run's model: from the zoo registry and the model card of the evaluated weights.

    A user model's factory is not imported to render a leaderboard: its parameter count is the one the run
    counted on the loaded network (`parameters` of the run), else a card beside its checkpoint ('-' in runs
    stored before runs counted them, without a card).
    """
    key = (run["model"], run.get("profile"), run.get("checkpoint_sha256"))
    if key in _INFO_CACHE:
        return _INFO_CACHE[key]
    card = _card_for(run)
    if run.get("source") == "user":
        counted = run.get("parameters")
        onnx = str(run["model"]).lower().endswith(".onnx")
        info = ModelInfo(int(counted) if counted is not None else card.get("parameters"),
                         "user model (ONNX)" if onnx else "user model",
                         f"user model `{run['model']}` ({'an ONNX file' if onnx else 'a factory'} of your own)",
                         str(card.get("citation", "")), str(card.get("protocol", "")), str(card.get("training_command", "")))
    elif card.get("external") or run.get("external"):
        info = _external_info(run, card)
    else:
        from models_zoo import VARIANTS

        spec = VARIANTS.get(run["model"]) if run["model"] in VARIANTS else None
        params = card.get("parameters")
        if params is None and spec is not None:
            params = _parameter_count(spec, str(run.get("profile") or "tiny"))
        description = spec.description if spec is not None else ""
        info = ModelInfo(params, recipe_of(description, card, str(run.get("task", ""))), description or "-",
                         spec.citation if spec is not None else "", str(card.get("protocol", "")),
                         str(card.get("training_command", "")))
    _INFO_CACHE[key] = info
    return info


def _external_info(run: dict, card: dict) -> ModelInfo:
    """An external model: not trained by facebench; where its weights come from, its licence and native threshold
    (its card, else what the run stored)."""
    from models_zoo import VARIANTS

    spec = VARIANTS.get(run["model"]) if run["model"] in VARIANTS else None
    weights = str(card.get("weights") or run.get("external") or "")
    native = card.get("native_threshold") or run.get("native_threshold") or {}
    if isinstance(native, str):
        native = json.loads(native) if native else {}
    counted = run.get("parameters")
    parts = [spec.description if spec is not None else f"external model `{run['model']}`"]
    parts.append(f"external weights: {weights}" if weights else "external weights")
    for key, label in (("origin", "origin"), ("licence", "licence"), ("input", "input")):
        if card.get(key) or run.get(key):
            parts.append(f"{label}: {card.get(key) or run.get(key)}")
    if native:
        parts.append(f"native threshold: {native.get('rule', '')} {native.get('value', '')} ({native.get('facebench_score', '')}); "
                     "this leaderboard decides at the dev threshold fitted like every model's")
    source = str(card.get("distribution") or "").strip()
    recipe = f"external ({source} {card.get('version', '')}), not trained by facebench" if source else \
        "external, not trained by facebench"
    return ModelInfo(int(counted) if counted is not None else card.get("parameters"), recipe, "; ".join(parts),
                     spec.citation if spec is not None else "", "", "", weights or "external")


def _parameter_count(spec, profile: str) -> Optional[int]:
    """Parameters of a zoo variant at `profile`; None when it cannot be built here."""
    try:
        return spec.parameter_count(profile)
    except Exception:  # a variant that cannot be built here: the count is unknown, not an error
        return None


def fmt_params(n: Optional[int]) -> str:
    """A parameter count as the tables print it (`341.1k`, `1.25M`; `-` when unknown)."""
    if n is None:
        return "-"
    return f"{n / 1e3:.1f}k" if n < 1e6 else f"{n / 1e6:.2f}M"
