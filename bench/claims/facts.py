"""What a claim states that is read from the code, not measured: parameter counts from the variant specs, and the
labels each recipe trains on from the variant registrations (`VariantSpec.labels`)."""
from __future__ import annotations

from dataclasses import dataclass

from bench.claims.records import Claim
from bench.goals import PROFILES
from bench.report import Cell, Paragraph, Table


@dataclass(frozen=True)
class ParameterRatio:
    """`numerator`'s parameters / `denominator`'s, per profile, against the `claimed` ratio."""

    numerator: str
    denominator: str
    claimed: float
    says: str

    def ratios(self) -> dict[str, tuple[int, int, float]]:
        from models_zoo import get_variant

        out = {}
        for profile in PROFILES:
            num = get_variant(self.numerator).parameter_count(profile)
            den = get_variant(self.denominator).parameter_count(profile)
            out[profile] = (num, den, num / den)
        return out

    def blocks(self, claim: Claim) -> list:
        ratios = self.ratios()
        rows = [[Cell(v, code=True)] + [Cell(f"{ratios[p][i] / 1e6:.3f} M") for p in PROFILES]
                for i, v in ((0, self.numerator), (1, self.denominator))]
        rows.append([Cell("ratio")] + [Cell(f"{ratios[p][2]:.1f}x") for p in PROFILES])
        table = Table("parameters", f"Parameters, from the variant specs ({self.says}; not measured)",
                      ["variant"] + [f"{p} profile" for p in PROFILES], rows, align=["l"] + ["r"] * len(PROFILES))
        shown = ", ".join(f"{ratios[p][2]:.1f}x at the {p} profile" for p in PROFILES)
        return [table, Paragraph(f"The seed says {self.claimed:g}x; the code gives {shown}.")]


@dataclass(frozen=True)
class LabelsUsed:
    """The labels each variant's recipe trains on, stage by stage, as its registration declares them."""

    variants: tuple[str, ...]
    says: str

    def blocks(self, claim: Claim) -> list:
        from models_zoo import get_variant
        from models_zoo.registry import LABEL_KINDS

        rows = []
        for name in self.variants:
            spec = get_variant(name)
            for stage, kinds in spec.labels or (("(not declared)", ()),):
                text = "; ".join(f"{k}: {LABEL_KINDS[k]}" for k in kinds) or "none"
                rows.append([Cell(name, code=True), Cell(stage), Cell(text)])
        return [Table("labels", f"Labels each recipe trains on, from the variant registrations ({self.says}; "
                      "not measured)", ["variant", "stage", "labels"], rows)]
