"""One file per variant; importing this package registers them all."""
from models_zoo.variants import (  # noqa: F401
    cdcn,
    contrastive_triplet,
    contrastive_triplet_semi,
    depth_gan_spoof,
    dlib_resnet,
    facenet_baseline,
    multiloss_sota,
    triplet_adv,
)
