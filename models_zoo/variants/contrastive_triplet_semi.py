"""`contrastive-triplet-semi`: `contrastive-triplet` with a fraction of identity labels in pre-training.

The same recipe (one code path): `label_fraction` (default 10 %) of the identities is labelled and stage 1
adds a supervised contrastive term anchored on their images; the rest stays self-supervised. Stage 2 (clean
warm-up, then adversarial fine-tuning) is `contrastive-triplet`'s, with the labels of the whole train split.
"""
from models_zoo.facenet import EmbeddingNet, facenet
from models_zoo.registry import register_variant
from models_zoo.training import specialised_recipe
from models_zoo.variants.contrastive_triplet import ZOO_STAGE_SHARE, contrastive_triplet_recipe

DEFAULT_LABEL_FRACTION = 0.10

train_contrastive_triplet_semi = specialised_recipe(contrastive_triplet_recipe, "train_contrastive_triplet_semi",
                                                    defaults={"label_fraction": DEFAULT_LABEL_FRACTION,
                                                              "stage_share": ZOO_STAGE_SHARE})


@register_variant(
    "contrastive-triplet-semi",
    task="fr",
    description="contrastive-triplet, semi-supervised: pre-training adds a supervised contrastive term on a "
    "fraction of labelled identities (default 10 %)",
    input_size={"tiny": 64, "paper": 160},
    default_protocol="synth-fr",
    citation="Adversarial contrastive pre-training + triplet-loss adversarial fine-tuning for face recognition, "
    "semi-supervised form (facebench's FR seed method; supervised contrastive term after Khosla et al., NeurIPS "
    "2020; bibliographic reference not recorded in the repository yet)",
    recipe=train_contrastive_triplet_semi,
    zoo_epochs={"tiny": 21},  # zoo_stage_epochs: 0.5 pre-training + 20 clean warm-up + 0.5 adversarial fine-tuning
    labels={"pre-training": ("identity-fraction",), "clean warm-up": ("identity",),
            "adversarial fine-tuning": ("identity",)},
)
def contrastive_triplet_semi(profile: str) -> EmbeddingNet:
    return facenet(profile)
