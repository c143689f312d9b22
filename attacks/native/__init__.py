"""Native (pure torch) attacks; importing this package registers them."""
from attacks.native import apgd, cw, fgsm, fmn, masked, mim, minimal, pgd, square, transfer

__all__ = ["apgd", "cw", "fgsm", "fmn", "masked", "mim", "minimal", "pgd", "square", "transfer"]
