"""The model zoo: registered variants, their recipes, checkpoints and shipped tiny weights."""
from models_zoo.registry import PROFILES, VARIANTS, VariantSpec, get_variant, register_external, register_variant
from models_zoo import variants  # noqa: F401  (registers every variant)

__all__ = ["PROFILES", "VARIANTS", "VariantSpec", "get_variant", "register_external", "register_variant"]
