"""One file per variant; importing this package registers them all."""
from models_zoo.variants import facenet_baseline  # noqa: F401
