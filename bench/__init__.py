"""facebench: adversarial robustness benchmark for face recognition and anti-spoofing."""

__version__ = "0.1.0"
