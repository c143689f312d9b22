"""Native (pure torch) attacks; importing this package registers them."""
from attacks.native import fgsm, pgd  # noqa: F401
