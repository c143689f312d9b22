"""One file per variant; importing this package registers them all."""
from models_zoo.variants import cdcn, depth_gan_spoof, facenet_baseline, multiloss_sota  # noqa: F401
