"""`facenet-baseline`: FaceNet with triplet loss and semi-hard mining, no adversarial training."""
from models_zoo.facenet import EmbeddingNet, facenet
from models_zoo.registry import register_variant
from models_zoo.training import train_triplet


@register_variant(
    "facenet-baseline",
    task="fr",
    description="FaceNet: timm ResNet -> L2-normalised embedding, triplet loss (semi-hard), no adversarial training",
    input_size={"tiny": 64, "paper": 160},
    default_protocol="synth-fr",
    citation="Schroff, Kalenichenko, Philbin. FaceNet. CVPR 2015",
    recipe=train_triplet,
    zoo_epochs={"tiny": 30},
    labels={"training": ("identity",)},
)
def facenet_baseline(profile: str) -> EmbeddingNet:
    return facenet(profile)
