"""`facebench claims`: claims as data, interval math, verdict rules, the grid and its overrides, the docs block,
resumable training and evaluation, and a tiny end-to-end claim on a shrunk anti-spoofing world."""
from __future__ import annotations

import inspect
import json
import math
import os
import shlex
from dataclasses import replace
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from bench.claims import running
from bench.claims.command import Request, run
from bench.claims.evaluations import DEV_TAR, EVALUATIONS, TEST_HTER, fas_measures, fr_measures, minimal_key
from bench.claims.figures import Figures
from bench.claims.grid import points, select_claims
from bench.claims.records import CLAIMS, Arm, Axis, Claim, Measure, get_claim, register_claim
from bench.claims.render import BEGIN, END, check_docs, replace_block, write_docs
from bench.claims.seeds import FAS_PROTOCOLS, FINETUNE_EPOCHS  # importing registers the seeds' claims
from bench.claims.rules import (NOT_ENOUGH_SEEDS, NOT_REPRODUCED, REPRODUCED, AllOf, CatchUp, Comparison, Differences,
                                Part)
from bench.claims.stats import difference_interval, mean_interval, t_cdf, t_quantile
from bench.cli import main
from bench.errors import BadInputError
from bench.protocols import get_protocol

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def registry(monkeypatch):
    """A throwaway copy of the claim registry (the real one is restored afterwards)."""
    monkeypatch.setattr(CLAIMS, "_entries", dict(CLAIMS._entries))
    return CLAIMS


# --------------------------------------------------------------------------- interval math


def test_t_quantiles_against_known_values():
    p = 0.975
    assert t_quantile(p, 1) == pytest.approx(math.tan(math.pi * (p - 0.5)), rel=1e-10)  # Cauchy
    assert t_quantile(p, 2) == pytest.approx((2 * p - 1) / math.sqrt(2 * p * (1 - p)), rel=1e-10)  # closed form
    assert t_quantile(p, 4) == pytest.approx(2.7764451051977987, rel=1e-10)
    assert t_quantile(p, 10) == pytest.approx(2.2281388519649385, rel=1e-9)
    assert t_quantile(p, 1e7) == pytest.approx(1.959963984540054, rel=1e-6)  # the normal's
    assert t_quantile(0.025, 4) == pytest.approx(-2.7764451051977987, rel=1e-10)
    for df in (1.5, 3.7, 25.2):  # fractional degrees of freedom (Welch)
        assert t_cdf(t_quantile(0.975, df), df) == pytest.approx(0.975, abs=1e-12)
    assert t_cdf(0.0, 3) == 0.5 and t_cdf(-2.0, 3) == pytest.approx(1 - t_cdf(2.0, 3))
    # df = 3: F(t) = 1/2 + (t / (sqrt(3) (1 + t^2/3)) + atan(t / sqrt(3))) / pi
    t = 1.3
    assert t_cdf(t, 3) == pytest.approx(0.5 + (t / (math.sqrt(3) * (1 + t * t / 3)) + math.atan(t / math.sqrt(3))) / math.pi)


def test_mean_interval_and_welch_difference():
    e = mean_interval([1.0, 2.0, 3.0])
    half = (2 * 0.975 - 1) / math.sqrt(2 * 0.975 * 0.025) / math.sqrt(3)  # t(0.975, 2) * s / sqrt(n), s = 1
    assert (e.mean, e.n) == (2.0, 3) and e.low == pytest.approx(2 - half) and e.high == pytest.approx(2 + half)
    one = mean_interval([0.4])
    assert one.mean == 0.4 and one.n == 1 and not one.has_interval
    assert not mean_interval([]).defined
    a, b = [1.0, 2.0, 3.0], [2.0, 4.0, 9.0]
    va, vb = 1.0 / 3, 13.0 / 3  # the variances over n of each group
    df = (va + vb) ** 2 / (va ** 2 / 2 + vb ** 2 / 2)
    d = difference_interval(a, b)
    width = t_quantile(0.975, df) * math.sqrt(va + vb)
    assert d.mean == -3.0 and d.low == pytest.approx(-3 - width) and d.high == pytest.approx(-3 + width) and d.n == 3
    flat = difference_interval([0.2, 0.2, 0.2], [0.1, 0.1, 0.1])
    assert flat.low == flat.high == pytest.approx(0.1)


# --------------------------------------------------------------------------- verdict rules on synthetic figures

ROB = Measure("rob", "robust accuracy", "%", True)
HTER = Measure("hter", "HTER", "%", False)


def _curve_claim(**rule) -> Claim:
    return Claim("toy-curve", "toy", "fr", "c is as robust as r with far fewer epochs", "a test",
                 (Arm("r", "triplet-adv"), Arm("c", "contrastive-triplet"), Arm("o", "contrastive-triplet")),
                 ("p",), (ROB,), "fr-attacks", CatchUp("r", "c", ("rob",), others=("o",), **rule),
                 axis=Axis("epochs", (1, 2, 4, 8), "--finetune-epochs"))


def _fill(claim: Claim, table: dict, seeds: int = 3, protocol: str = "p", key: str = "rob") -> Figures:
    """Figures with `seeds` values around each mean of `table` {(arm, x): mean} (spread +-0.01)."""
    figures = Figures(claim)
    for (arm, x), mean in table.items():
        for s in range(seeds):
            figures.add(arm, protocol, x, s, {key: mean + 0.01 * (s - 1)})
    return figures


REFERENCE_CURVE = {("r", 1): 0.10, ("r", 2): 0.30, ("r", 4): 0.50, ("r", 8): 0.70}


def test_catch_up_rule_both_outcomes_and_too_few_seeds():
    claim = _curve_claim()
    fast = {("c", 1): 0.40, ("c", 2): 0.69, ("c", 4): 0.71, ("c", 8): 0.72, ("o", 1): 0.1, ("o", 2): 0.1, ("o", 4): 0.1,
            ("o", 8): 0.1}
    v = claim.rule.decide(claim, _fill(claim, {**REFERENCE_CURVE, **fast}))
    assert v.status == REPRODUCED, v
    assert "`r` reaches it at 8" in v.lines[0] and "`c` at 2 (holds)" in v.lines[0] and "`o` at none" in v.lines[0]
    slow = {("c", 1): 0.10, ("c", 2): 0.30, ("c", 4): 0.55, ("c", 8): 0.70}
    v = claim.rule.decide(claim, _fill(claim, {**REFERENCE_CURVE, **slow}))
    assert v.status == NOT_REPRODUCED and "`c` at 8 (does not hold)" in v.lines[0]
    # the reference reaching its own robustness at once leaves nothing to be faster than
    flat = {("r", x): 0.7 for x in (1, 2, 4, 8)}
    v = claim.rule.decide(claim, _fill(claim, {**flat, **{("c", x): 0.7 for x in (1, 2, 4, 8)}}))
    assert v.status == NOT_REPRODUCED
    v = claim.rule.decide(claim, _fill(claim, {**REFERENCE_CURVE, **fast}, seeds=2))
    assert v.status == NOT_ENOUGH_SEEDS and "`c` at 2" in v.reason
    assert "far fewer" in claim.rule.describe(claim) and "E / 2" in claim.rule.describe(claim)


def test_catch_up_rule_lower_is_better_and_censored_values():
    hter_claim = replace(_curve_claim(), measures=(HTER,), rule=CatchUp("r", "c", ("hter",)))
    ref = {("r", x): v for x, v in zip((1, 2, 4, 8), (0.5, 0.4, 0.3, 0.2))}
    fast = {("c", x): v for x, v in zip((1, 2, 4, 8), (0.3, 0.2, 0.2, 0.2))}
    assert hter_claim.rule.decide(hter_claim, _fill(hter_claim, {**ref, **fast}, key="hter")).status == REPRODUCED
    # a minimal budget above the search's ceiling (inf) counts as the ceiling and is shown as a lower bound
    dist = Measure("d", "median minimal perturbation", "/255", True, 255.0, ceiling=32 / 255)
    claim = replace(_curve_claim(), measures=(dist,), rule=CatchUp("r", "c", ("d",)))
    figures = Figures(claim)
    for s, v in enumerate((0.1, math.inf, 0.12)):
        figures.add("c", "p", 1, s, {"d": v})
    cell = figures.cell("c", "p", 1, "d")
    assert cell.censored == 1 and cell.estimate.mean == pytest.approx((0.1 + 32 / 255 + 0.12) / 3)
    # a rate's interval is cut to [0, 1]
    rate = replace(ROB, bounds=(0.0, 1.0))
    claim = replace(_curve_claim(), measures=(rate,))
    figures = _fill(claim, {("r", 1): 0.99})
    e = figures.cell("r", "p", 1, "rob").estimate
    assert e.high == 1.0 and e.low == pytest.approx(mean_interval([0.98, 0.99, 1.0]).low)


def _pair_claim(*comparisons: Comparison, protocols=("p1", "p2")) -> Claim:
    return Claim("toy-pair", "toy", "fas", "a beats b", "a test", (Arm("a", "depth-gan-spoof"), Arm("b", "cdcn")),
                 protocols, (HTER,), "fas-hter", Differences(comparisons))


def _pairs(claim: Claim, a: list[float], b: list[float]) -> Figures:
    figures = Figures(claim)
    for protocol in claim.protocols:
        for s, (va, vb) in enumerate(zip(a, b)):
            figures.add("a", protocol, None, s, {"hter": va})
            figures.add("b", protocol, None, s, {"hter": vb})
    return figures


def test_differences_rule_both_outcomes_margin_and_too_few_seeds():
    claim = _pair_claim(Comparison("a", "b", "hter", "a generalises better"))
    v = claim.rule.decide(claim, _pairs(claim, [0.10, 0.11, 0.12], [0.20, 0.21, 0.19]))
    assert v.status == REPRODUCED and "improvement +9.0 [" in v.lines[0] and v.tables[0].headers == ["comparison", "p1", "p2"]
    v = claim.rule.decide(claim, _pairs(claim, [0.20, 0.21, 0.19], [0.10, 0.11, 0.12]))
    assert v.status == NOT_REPRODUCED and "the other arm is better" in v.lines[0]
    v = claim.rule.decide(claim, _pairs(claim, [0.10, 0.11], [0.20, 0.21]))
    assert v.status == NOT_ENOUGH_SEEDS and "`a` (2)" in v.reason
    near = _pair_claim(Comparison("a", "b", "hter", "near", margin=0.02),
                       Comparison("b", "a", "hter", "shown only", decisive=False))
    worse_by_half_a_point = ([0.104, 0.105, 0.106], [0.099, 0.100, 0.101])  # interval of a - b: [-0.73, -0.27] points
    v = near.rule.decide(near, _pairs(near, *worse_by_half_a_point))
    assert v.status == REPRODUCED and "reported, not counted" in v.lines[1]
    strict = _pair_claim(Comparison("a", "b", "hter", "near", margin=0.002))
    assert strict.rule.decide(strict, _pairs(strict, *worse_by_half_a_point)).status == NOT_REPRODUCED


def test_differences_along_an_axis_average_each_seed_over_the_axis():
    """The FR claim's second part: per seed, the mean over the axis values (a seed's values share its start)."""
    claim = replace(_curve_claim(), rule=Differences((Comparison("o", "c", "rob", "o improves"),)))
    better = {("o", x): 0.5 + 0.1 * i for i, x in enumerate((1, 2, 4, 8))}
    worse = {("c", x): 0.45 + 0.1 * i for i, x in enumerate((1, 2, 4, 8))}
    v = claim.rule.decide(claim, _fill(claim, {**better, **worse}))
    assert v.status == REPRODUCED and "improvement +5.0 [" in v.lines[0], v
    assert v.tables[0].headers == ["comparison", "at 1", "at 2", "at 4", "at 8"]
    assert "epochs (1, 2, 4, 8)" in claim.rule.describe(claim)
    # one axis value with a seed missing: that seed is left out of the per-seed mean, so 2 seeds remain
    figures = _fill(claim, {**better, **worse})
    figures._values[("o", "p", 8, "rob")].pop(2)
    assert claim.rule.decide(claim, figures).status == NOT_ENOUGH_SEEDS


def test_a_statement_of_parts_is_reproduced_only_when_every_part_is():
    fast = {("c", 1): 0.40, ("c", 2): 0.69, ("c", 4): 0.71, ("c", 8): 0.72}
    improves = Differences((Comparison("o", "c", "rob", "o improves"),))
    claim = replace(_curve_claim(), rule=AllOf((Part("sooner", CatchUp("r", "c", ("rob",))), Part("o better", improves))))
    assert claim.rule.reads() == ({"r", "c", "o"}, {"rob"})
    o_better = {("o", x): v + 0.05 for (_, x), v in fast.items()}
    v = claim.rule.decide(claim, _fill(claim, {**REFERENCE_CURVE, **fast, **o_better}))
    assert v.status == REPRODUCED and len(v.lines) == 2 and v.lines[0].startswith("**sooner: reproduced")
    assert "\n  - " in v.lines[0] and len(v.tables) == 1
    o_worse = {("o", x): v - 0.05 for (_, x), v in fast.items()}
    v = claim.rule.decide(claim, _fill(claim, {**REFERENCE_CURVE, **fast, **o_worse}))
    assert v.status == NOT_REPRODUCED and v.reason == f"sooner: {REPRODUCED}; o better: {NOT_REPRODUCED}"
    figures = _fill(claim, {**REFERENCE_CURVE, **fast})  # `o` not measured at all
    assert claim.rule.decide(claim, figures).status == NOT_ENOUGH_SEEDS
    slow = {("c", 1): 0.10, ("c", 2): 0.30, ("c", 4): 0.55, ("c", 8): 0.70}
    assert claim.rule.decide(claim, _fill(claim, {**REFERENCE_CURVE, **slow})).status == NOT_REPRODUCED
    assert "*1. sooner.*" in claim.rule.describe(claim) and "*2. o better.*" in claim.rule.describe(claim)


def test_a_rule_reading_an_arm_or_measure_the_claim_has_not_is_refused(registry):
    with pytest.raises(ValueError, match="its rule reads"):
        register_claim(replace(_curve_claim(), name="toy-bad", rule=CatchUp("r", "nobody", ("rob",))))
    with pytest.raises(ValueError, match="its rule reads"):
        register_claim(replace(_curve_claim(), name="toy-bad", rule=CatchUp("r", "c", ("no-such-measure",))))


def test_pooled_values_need_every_protocol():
    claim = _pair_claim(Comparison("a", "b", "hter", "x"))
    figures = _pairs(claim, [0.1, 0.2, 0.3], [0.1, 0.2, 0.3])
    figures.add("a", "p1", None, 3, {"hter": 0.9})  # seed 3 only on p1: left out of the mean over protocols
    values, censored = figures.pooled_values("a", None, "hter")
    assert sorted(values) == [0, 1, 2] and not censored
    figures.add("a", "p1", None, 4, {"hter": float("nan")})  # not measured
    assert 4 not in figures.seeds("a", "p1", None, "hter")


# --------------------------------------------------------------------------- the records and the grid


def test_the_seeds_claims_are_whole():
    from models_zoo import get_variant
    from models_zoo.variants.contrastive_triplet import zoo_stage_epochs

    fr, fas = get_claim("fr-finetune-epochs"), get_claim("fas-gan-pretraining")
    assert fr.axis.values == FINETUNE_EPOCHS == (1, 2, 4, 8, 16) and fr.seeds >= 3 and fas.seeds >= 3
    assert {a.variant for a in fr.arms} == {"triplet-adv", "contrastive-triplet", "contrastive-triplet-semi"}
    assert sorted(dict(a.options).get("label_fraction") for a in fr.arms if a.variant == "contrastive-triplet-semi") == [0.01, 0.1]
    assert fas.protocols == FAS_PROTOCOLS == ("synth-ocim->o", "synth-ocim->c", "synth-ocim->i", "synth-ocim->m", "synth-casia->replay",
                             "synth-replay->casia")
    assert [dict(a.options).get("pretrain") for a in fas.arms] == ["gan", "l1", "none", None, None]
    for claim in (fr, fas):
        keys = {m.key for m in claim.measures}
        arms, read = claim.rule.reads()
        assert read <= keys and arms <= {a.label for a in claim.arms}
        for arm in claim.arms:  # every option is one the recipe takes and `facebench train` passes on
            recipe = inspect.signature(get_variant(arm.variant).recipe).parameters
            for key in dict(arm.options) | ({arm.axis_option: 1} if arm.axis_option else {}):
                assert key in recipe, (arm.label, key)
    pretrain, warmup, _ = zoo_stage_epochs("contrastive-triplet", "tiny")
    point = next(p for p in points(fr) if p.arm == "contrastive-triplet" and p.x == 4)
    assert dict(point.options) == {"pretrain_epochs": pretrain, "warmup_epochs": warmup, "finetune_epochs": 4}
    assert point.epochs == pretrain + warmup + 4
    # the contrastive arms' pre-training and warm-up: once per seed, a shared start every axis value continues
    start = point.start
    assert start.is_start and start.seed == point.seed and start.x is None and start.epochs == pretrain + warmup
    assert dict(start.options) == {"pretrain_epochs": pretrain, "warmup_epochs": warmup, "finetune_epochs": 0}
    assert f"--init w/{start.name}.safetensors --out w/x.safetensors" in point.command("w/x.safetensors")
    assert {p.epochs for p in points(fr) if p.arm == "triplet-adv"} == {1, 2, 4, 8, 16}
    assert all(p.start is None for p in points(fr) if p.arm == "triplet-adv")  # it fine-tunes the shipped baseline
    assert {p.epochs for p in points(fas)} == {get_variant("cdcn").zoo_epochs["tiny"]}
    measured = [p for p in points(fr) if p.evaluated]
    assert len(measured) == 4 * 5 * 3 and len(points(fr)) == len(measured) + 3 * 3 and len(points(fas)) == 5 * 6 * 3
    assert len({p.name for p in points(fr) + points(fas)}) == len(points(fr)) + len(points(fas))


def test_fr_measures_follow_the_suite():
    keys = [m.key for m in fr_measures()]
    assert keys[0] == "dev TAR" and minimal_key("dodging", "linf") in keys and "impersonation pgd linf 8/255" in keys
    minimal = next(m for m in fr_measures() if m.key == minimal_key("impersonation", "linf"))
    assert minimal.ceiling == pytest.approx(32 / 255) and minimal.unit == "/255"


def test_every_training_command_is_a_facebench_train_line():
    from models_zoo import get_variant

    train = main.get_command(click.Context(main), "train")
    for claim in (get_claim("fr-finetune-epochs"), get_claim("fas-gan-pretraining")):
        for point in points(claim)[:: claim.seeds]:
            words = shlex.split(point.command("w/x.safetensors"))
            assert words[:2] == ["facebench", "train"]
            with train.make_context("train", words[2:]) as ctx:
                params = ctx.params
            assert (params["model"], params["epochs"], params["seed"], params["protocol"]) == \
                (point.variant, point.epochs, point.seed, point.protocol)
            for key, value in point.options:
                assert params[key] == value, (point.name, key)
            assert get_variant(point.variant).task == claim.kind


def test_labels_are_declared_data():
    from models_zoo import VARIANTS, get_variant
    from models_zoo.registry import LABEL_KINDS, register_variant
    from models_zoo.variants.multiloss_sota import DEFAULT_WEIGHTS

    for name in VARIANTS:  # external entries (dlib-resnet) are not trained by facebench: no recipe, no labels
        assert get_variant(name).labels or get_variant(name).external is not None, f"{name} declares no labels"
    gan = dict(get_variant("depth-gan-spoof").labels)
    assert [kinds for stage, kinds in gan.items() if stage.startswith("fine-tuning")] == [("live",)]
    # the multi-loss baseline trains on every auxiliary label: one per term of its loss
    assert set(get_variant("multiloss-sota").labels_used()) == {k.replace("_", "-") for k in DEFAULT_WEIGHTS}
    assert get_variant("contrastive-triplet").labels[0] == ("pre-training", ())
    assert set(LABEL_KINDS) >= set(get_variant("contrastive-triplet-semi").labels_used())
    with pytest.raises(ValueError, match="unknown label kind"):
        register_variant("toy-labels", task="fas", description="", input_size={}, default_protocol="synth-oulu",
                         labels={"training": ("colour",)})


def test_overrides_and_bad_input_refused():
    from models_zoo import get_variant

    claims = select_claims(["fr-finetune-epochs"], seeds=2, axis={"--finetune-epochs": "4,1"})
    assert claims[0].seeds == 2 and claims[0].axis.values == (1, 4)
    # a fraction of an epoch: half an epoch of adversarial fine-tuning is the zoo's contrastive schedule, and the
    # catch-up rule needs axis values below the reference's first (E / 2)
    fr = select_claims(["fr-finetune-epochs"], axis={"--finetune-epochs": "1,0.5"})[0]
    assert fr.axis.values == (0.5, 1) and type(fr.axis.values[1]) is int
    half = next(p for p in points(fr) if p.arm == "contrastive-triplet" and p.x == 0.5 and p.seed == 0)
    assert half.epochs == get_variant("contrastive-triplet").zoo_epochs["tiny"] and "finetune-epochs-0.5_" in half.name
    assert "--epochs 0.5 " in next(p for p in points(fr) if p.arm == "triplet-adv" and p.x == 0.5).command("w")
    claims = select_claims((), protocols=["synth-ocim->o, synth-casia->replay"])
    assert {c.name: c.protocols for c in claims}["fas-gan-pretraining"] == ("synth-ocim->o", "synth-casia->replay")
    assert {c.name: c.protocols for c in claims}["fr-finetune-epochs"] == ("synth-fr",)
    for kwargs, message in (({"seeds": 0}, "--seeds"), ({"axis": {"--finetune-epochs": "1,,2"}}, "comma-separated"),
                            ({"axis": {"--finetune-epochs": "2,2"}}, "repeated"), ({"axis": {"--finetune-epochs": "0"}}, "must be positive"),
                            ({"axis": {"--finetune-epochs": "nan"}}, "must be positive"),
                            ({"protocols": ["synth-nope"]}, "unknown protocol")):
        with pytest.raises(Exception, match=message):
            select_claims((), **kwargs)
    with pytest.raises(BadInputError, match="no selected claim is about fas"):
        select_claims(["fr-finetune-epochs"], protocols=["synth-oulu"])
    with pytest.raises(BadInputError, match="applies to claims with that axis"):
        select_claims(["fas-gan-pretraining"], axis={"--finetune-epochs": "1"})


# --------------------------------------------------------------------------- the command line


def test_dry_run_lists_every_training_and_evaluation_and_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(main, ["claims", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert r.output.strip().splitlines()[-1].startswith("150 grid points and 9 shared starts: 159 trainings and 150 "
                                                        "evaluations to do")
    assert r.output.count("facebench train --model") == 159
    r = CliRunner().invoke(main, ["claims", "--dry-run", "--only", "fas-gan-pretraining", "--seeds", "2",
                                  "--protocols", "synth-ocim->o", "--work", "w"])
    assert r.exit_code == 0 and "10 grid points: 10 trainings and 10 evaluations to do" in r.output
    r = CliRunner().invoke(main, ["claims", "--dry-run", "--only", "fr-finetune-epochs", "--seeds", "1",
                                  "--finetune-epochs", "1,2"])
    assert r.exit_code == 0 and "8 grid points and 3 shared starts: 11 trainings" in r.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args", [
    ["--only", "no-such-claim"], ["--seeds", "0"], ["--finetune-epochs", "1,two"], ["--finetune-epochs", "0,1"],
    ["--protocols", "synth-nowhere"], ["--samples", "0"], ["--jobs", "0"], ["--only", "fas-gan-pretraining", "--finetune-epochs", "2"],
    ["--docs", "README.md"], ["--out", "README.md/claims.md"], ["--work", "README.md/work"],
])
def test_bad_input_is_one_line_before_any_work(args, tmp_path, monkeypatch):
    import models_zoo.training

    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("# no markers here\n")
    monkeypatch.setattr(models_zoo.training, "train_variant", lambda *a, **k: pytest.fail("trained after bad input"))
    r = CliRunner().invoke(main, ["claims", *args])
    assert r.exit_code == 2, r.output
    assert r.output.startswith("facebench: error: ") and r.output.count("\n") == 1, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["README.md"]


def test_help_explains_claims_and_verdicts():
    r = CliRunner().invoke(main, ["claims", "--help"])
    assert r.exit_code == 0
    for words in ("A claim is a record", "declared before", "not enough seeds", "reproduced", "hours", "--dry-run"):
        assert words in " ".join(r.output.split()), words


# --------------------------------------------------------------------------- the docs block

DOC = ("# Title\r\n\nBefore: keep me — ünïcode,   trailing spaces   \n"
       f"{BEGIN}\nold placeholder\n{END}\n\nAfter: keep me too\n<!-- another comment -->\n")


def test_docs_block_replaced_and_the_rest_byte_identical(tmp_path):
    path = tmp_path / "zoo.md"
    path.write_bytes(DOC.encode("utf-8"))
    write_docs(path, "### New\n\n| a |\n")
    new = path.read_bytes().decode("utf-8")
    head, tail = DOC.split(BEGIN)[0], DOC.split(END)[1]
    assert new.startswith(head + BEGIN + "\n### New\n") and new.endswith(END + tail)
    assert "old placeholder" not in new and new.count(BEGIN) == new.count(END) == 1
    write_docs(path, "### New\n\n| a |\n")
    assert path.read_bytes().decode("utf-8") == new  # the same block twice: the same file
    assert [p.name for p in tmp_path.iterdir()] == ["zoo.md"]  # no temporary file left


@pytest.mark.parametrize("text", ["no markers\n", f"{BEGIN}\nonly the start\n", f"{END}\n{BEGIN}\n",
                                  f"{BEGIN}\n{END}\n{BEGIN}\n{END}\n"])
def test_docs_without_exactly_one_pair_of_markers_refused(text, tmp_path):
    path = tmp_path / "d.md"
    path.write_text(text)
    with pytest.raises(BadInputError):
        check_docs(path)
    with pytest.raises(BadInputError):
        write_docs(path, "x")
    assert path.read_text() == text
    with pytest.raises(BadInputError, match="no such file"):
        check_docs(tmp_path / "missing.md")


def test_docs_zoo_has_the_markers():
    check_docs(ROOT / "docs" / "zoo.md")
    text = (ROOT / "docs" / "zoo.md").read_text()
    assert text.index("## The seeds' claims on the embedded world") < text.index(BEGIN)
    assert replace_block(text, "x").count("\n") <= text.count("\n")


# --------------------------------------------------------------------------- resumable runs (training faked)


def _toy_fas_claim(seeds: int = 2, epochs: int = 1) -> Claim:
    return Claim("toy-fas", "toy: GAN pre-training beats scratch", "fas", "the GAN-pre-trained model generalises "
                 "better than one trained from scratch", "a test",
                 (Arm("gan", "depth-gan-spoof", (("pretrain", "gan"),), epochs=epochs),
                  Arm("multiloss", "multiloss-sota", epochs=epochs)),
                 ("synth-casia->replay",), fas_measures(), "fas-hter",
                 Differences((Comparison("gan", "multiloss", TEST_HTER, "generalises better"),)), seeds=seeds)


@pytest.fixture
def fake_training(monkeypatch):
    """train_variant and the FAS evaluation replaced by stand-ins that count their calls."""
    import models_zoo.training
    from models_zoo.checkpoint import card_path, sha256_file

    calls = {"train": [], "evaluate": []}

    def train_variant(name, *, out, seed, command, epochs, options, protocol, **kwargs):
        calls["train"].append(Path(out).name)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(f"{name} {seed} {epochs} {sorted(options.items())}, training {len(calls['train'])}".encode())
        card = {"variant": name, "seed": seed, "training_command": command, "sha256": sha256_file(out), "dev": {},
                "input_size": 64, "data": get_protocol(protocol).data_fingerprint(64),
                "parameters": running.built_parameters(name, "tiny")}
        if "init" in options:  # as the contrastive recipes' cards say which start they continued
            card["training"] = {"stages_from": {"init": Path(options["init"]).name, "sha256": sha256_file(options["init"])}}
        card_path(out).write_text(json.dumps(card))
        return out, card

    def evaluate(point, weights, card, ctx):
        calls["evaluate"].append(point.name)
        value = 0.1 + 0.01 * point.seed + (0.05 if point.variant == "multiloss-sota" else 0)
        return {"figures": {TEST_HTER: value, DEV_TAR: value}}

    monkeypatch.setattr(models_zoo.training, "train_variant", train_variant)
    for name in ("fas-hter", "fr-attacks"):
        monkeypatch.setitem(EVALUATIONS, name, replace(EVALUATIONS[name], run=evaluate))
    return calls


def test_second_run_trains_and_evaluates_nothing(registry, fake_training, tmp_path):
    registry.add("toy-fas", _toy_fas_claim())
    req = Request(only=["toy-fas"], work=tmp_path / "work", out=tmp_path / "claims.md")
    outcomes, _ = run(req)
    assert len(fake_training["train"]) == len(fake_training["evaluate"]) == 4 and outcomes[0].trained == 4
    outcomes, _ = run(req)
    assert len(fake_training["train"]) == 4 and len(fake_training["evaluate"]) == 4
    assert outcomes[0].trained == outcomes[0].evaluated == 0
    assert "**Verdict: not enough seeds**" in (tmp_path / "claims.md").read_text()
    # a third seed: only its trainings; the verdict now has its seeds
    run(replace(req, seeds=3))
    assert len(fake_training["train"]) == 6 and all("_s2." in n for n in fake_training["train"][4:])
    assert "**Verdict: reproduced on the embedded world**" in (tmp_path / "claims.md").read_text()
    # the work directory moved: --out is not part of the comparison, nothing is retrained
    (tmp_path / "work").rename(tmp_path / "moved")
    run(replace(req, seeds=3, work=tmp_path / "moved"))
    assert len(fake_training["train"]) == 6 and len(fake_training["evaluate"]) == 6
    # a card whose command differs, or weights that do not match their card: trained again (and evaluated again)
    weights = sorted((tmp_path / "moved" / "weights").glob("*.safetensors"))
    card = json.loads(weights[0].with_suffix(".json").read_text())
    weights[0].with_suffix(".json").write_text(json.dumps({**card, "training_command": card["training_command"] + " --x"}))
    weights[1].write_bytes(b"changed")
    run(replace(req, seeds=3, work=tmp_path / "moved"))
    assert sorted(fake_training["train"][6:]) == sorted([weights[0].name, weights[1].name])
    assert len(fake_training["evaluate"]) == 8
    # trained on other data (the embedded world changed since), or a card that does not say: trained again
    card = json.loads(weights[2].with_suffix(".json").read_text())
    weights[2].with_suffix(".json").write_text(json.dumps({**card, "data": "0" * 64}))
    card = json.loads(weights[3].with_suffix(".json").read_text())
    weights[3].with_suffix(".json").write_text(json.dumps({k: v for k, v in card.items() if k != "data"}))
    run(replace(req, seeds=3, work=tmp_path / "moved"))
    assert sorted(fake_training["train"][8:]) == sorted([weights[2].name, weights[3].name])
    # another network than the code builds now (its parameter count): trained again
    card = json.loads(weights[4].with_suffix(".json").read_text())
    weights[4].with_suffix(".json").write_text(json.dumps({**card, "parameters": card["parameters"] + 1}))
    run(replace(req, seeds=3, work=tmp_path / "moved"))
    assert fake_training["train"][10:] == [weights[4].name]


def test_a_training_that_fine_tuned_shipped_weights_is_stale_once_they_change(tmp_path, monkeypatch):
    """`triplet-adv` fine-tunes `facenet-baseline`'s shipped weights: a retrained baseline retrains it in the claims."""
    import models_zoo.checkpoint
    from models_zoo.checkpoint import sha256_file

    shipped = tmp_path / "facenet-baseline-tiny.safetensors"
    shipped.write_bytes(b"the baseline")
    monkeypatch.setattr(models_zoo.checkpoint, "WEIGHTS_DIR", tmp_path)
    card = {"training": {"init": {"from": "facenet-baseline", "sha256": sha256_file(shipped)}}}
    assert not running._stale_start(card, "tiny")
    shipped.write_bytes(b"the baseline, retrained")
    assert running._stale_start(card, "tiny")
    assert running._stale_start({"training": {"init": {"from": "no-such-variant", "sha256": "0"}}}, "tiny")
    # not a shipped variant's: a start in the work directory (checked on its own), or no start at all
    assert not running._stale_start({"training": {"init": {"from": "w/start.safetensors", "sha256": "0"}}}, "tiny")
    assert not running._stale_start({"training": {"init": "as built (random)"}}, "tiny")


def test_weights_are_hashed_once_per_version(tmp_path, monkeypatch):
    """A plan, each worker pass and the gather check the same weights: each version of a file is hashed once."""
    import hashlib

    import models_zoo.checkpoint

    hashed = []
    real = models_zoo.checkpoint.sha256_file
    monkeypatch.setattr(models_zoo.checkpoint, "sha256_file", lambda path: hashed.append(path) or real(path))
    weights = tmp_path / "w.safetensors"
    weights.write_bytes(b"first")
    assert running.file_sha256(weights) == running.file_sha256(weights) == hashlib.sha256(b"first").hexdigest()
    assert len(hashed) == 1
    (tmp_path / "new").write_bytes(b"other")  # written again the way trainings write: a new file renamed over it
    os.replace(tmp_path / "new", weights)
    assert running.file_sha256(weights) == hashlib.sha256(b"other").hexdigest()
    assert len(hashed) == 2


def test_shared_starts_are_trained_once_and_their_continuations_follow_them(registry, fake_training, tmp_path):
    registry.add("toy-fr", _toy_fr_claim())
    req = Request(only=["toy-fr"], work=tmp_path / "work", out=tmp_path / "claims.md")
    outcomes, _ = run(req)
    starts = [n for n in fake_training["train"] if "finetune-epochs-0_" in n]
    assert len(fake_training["train"]) == 2 * 2 + 2 + 2 * 2 and len(starts) == 2  # r, c's starts, c
    assert len(fake_training["evaluate"]) == 8 and not any("finetune-epochs-0_" in n for n in fake_training["evaluate"])
    # each continuation is trained after its own seed's start and names it
    order = list(fake_training["train"])
    for n in order:
        if n.startswith("contrastive-triplet_finetune-epochs-") and n not in starts:
            seed = n.split("_s")[-1].split(".")[0]
            start = next(s for s in starts if s.endswith(f"_s{seed}.safetensors"))
            assert order.index(start) < order.index(n)
            card = json.loads((tmp_path / "work" / "weights" / n).with_suffix(".json").read_text())
            assert f"--init {tmp_path / 'work' / 'weights' / start}" in card["training_command"]
    assert "2 shared starts" in (tmp_path / "claims.md").read_text()
    run(req)
    assert len(fake_training["train"]) == 10 and len(fake_training["evaluate"]) == 8
    # a start trained again (here: its weights changed): its continuations are trained again, the rest are not
    (tmp_path / "work" / "weights" / starts[0]).write_bytes(b"another start")
    run(req)
    again = fake_training["train"][10:]
    seed = starts[0].split("_s")[-1]
    assert again[0] == starts[0] and sorted(again[1:]) == sorted(
        n for n in order if n.startswith("contrastive-triplet_finetune-epochs-") and n.endswith(f"_s{seed}")
        and n not in starts)


def test_points_on_synth_fr_dev_share_synth_fr_s_trainings(registry, fake_training, tmp_path):
    """Evaluated on synth-fr-dev and synth-fr (one train split), each training is done once and evaluated on both."""
    registry.add("toy-fr", replace(_toy_fr_claim(), protocols=("synth-fr-dev", "synth-fr")))
    req = Request(only=["toy-fr"], work=tmp_path / "work", out=tmp_path / "claims.md")
    run(req)
    assert len(fake_training["train"]) == len(set(fake_training["train"])) == 10  # as for synth-fr alone
    assert all("_synth-fr_tiny_" in n for n in fake_training["train"])
    evaluations = sorted(p.name for p in (tmp_path / "work" / "evaluations").glob("*.json"))
    assert len(fake_training["evaluate"]) == len(evaluations) == 16
    assert sum("_on-synth-fr-dev." in n for n in evaluations) == 8
    text = (tmp_path / "claims.md").read_text()
    assert "10 trainings: 8 evaluated on each protocol and 2 shared starts" in text and "`synth-fr-dev`" in text
    run(req)
    assert len(fake_training["train"]) == 10 and len(fake_training["evaluate"]) == 16


def _toy_fr_claim(seeds: int = 2) -> Claim:
    return Claim("toy-fr", "toy", "fr", "c as robust as r, sooner", "a test",
                 (Arm("r", "triplet-adv"), Arm("c", "contrastive-triplet", (("pretrain_epochs", 1), ("warmup_epochs", 0)),
                                               axis_option="finetune_epochs", shared_stages=True)),
                 ("synth-fr",), fr_measures(), "fr-attacks", CatchUp("r", "c", (minimal_key("impersonation", "linf"),)),
                 axis=Axis("fine-tuning epochs", (1, 2), "--finetune-epochs"), seeds=seeds)


def _thread_spawner(started: list):
    """Helpers as threads of this process (the fakes stay patched in): the points' flocks still exclude each other."""
    import threading

    def spawn(target):
        errors = []

        def body():
            try:
                target()
            except BaseException as e:  # noqa: BLE001 - reported through the exit code, as a process would
                errors.append(e)

        thread = threading.Thread(target=body)
        thread.start()
        started.append(thread)
        return running.Helper(lambda: (thread.join(), 1 if errors else 0)[1], lambda: None)

    return spawn


def test_workers_share_the_work_directory_and_do_each_point_once(registry, fake_training, tmp_path, monkeypatch):
    import time as time_module

    import models_zoo.training
    from bench.claims.evaluations import Context

    monkeypatch.setattr(running, "WAIT_S", 0.01)
    fake = models_zoo.training.train_variant
    monkeypatch.setattr(models_zoo.training, "train_variant", lambda *a, **k: (time_module.sleep(0.05), fake(*a, **k))[1])
    claim = _toy_fr_claim(seeds=3)
    ctx = Context(tmp_path / "work", 4, "cpu")
    started = []
    outcomes = running.run_claims([claim], ctx, jobs=3, spawn=_thread_spawner(started))
    assert len(started) == 2  # workers 2 and 3 beside this one
    trained, evaluated = fake_training["train"], fake_training["evaluate"]
    assert len(trained) == len(set(trained)) == 3 * 2 + 3 + 3 * 2 and len(evaluated) == len(set(evaluated)) == 12
    for point in points(claim):  # every continuation after its own start, whichever worker trained them
        if point.start is not None:
            assert trained.index(f"{point.start.name}.safetensors") < trained.index(f"{point.name}.safetensors")
    figures = outcomes[0].figures  # read back from the work directory: every worker's points
    assert set(figures.seeds("c", "synth-fr", 2, DEV_TAR)) == set(figures.seeds("r", "synth-fr", 1, DEV_TAR)) == {0, 1, 2}
    assert sorted(p.name for p in (tmp_path / "work" / "locks").iterdir())[0].endswith(".lock")


def test_a_failed_worker_fails_the_run_and_keeps_what_was_done(registry, fake_training, tmp_path):
    from bench.claims.evaluations import Context
    from bench.errors import WorkerFailedError

    ctx = Context(tmp_path / "work", 4, "cpu")
    with pytest.raises(WorkerFailedError, match="worker 2 failed"):
        running.run_claims([_toy_fr_claim()], ctx, jobs=2, spawn=lambda target: running.Helper(lambda: 1, lambda: None))
    assert len(fake_training["train"]) == 10  # this process did it all: kept, a second run has nothing to do
    running.run_claims([_toy_fr_claim()], ctx)
    assert len(fake_training["train"]) == 10


def test_an_interrupted_run_stops_its_helpers(registry, fake_training, tmp_path, monkeypatch):
    import models_zoo.training
    from bench.claims.evaluations import Context

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(models_zoo.training, "train_variant", interrupted)
    events = []
    helper = running.Helper(lambda: events.append("waited") or 0, lambda: events.append("stopped"))
    with pytest.raises(KeyboardInterrupt):
        running.run_claims([_toy_fr_claim()], Context(tmp_path / "work", 4, "cpu"), jobs=2, spawn=lambda target: helper)
    assert events == ["stopped", "waited"]


def test_a_worker_stops_before_its_next_point_when_told(registry, fake_training, tmp_path):
    """A helper whose main process is gone stops this way (`keep_going`: its parent pid changed)."""
    from bench.claims.evaluations import Context

    claim = _toy_fr_claim()
    ctx = Context(tmp_path / "work", 4, "cpu")
    plan = running.make_plan([claim], ctx)
    answers = iter([True, False])
    running.work_through(plan, ctx, lambda s: None, {claim.name: running.Outcome(claim, Figures(claim))},
                         keep_going=lambda: next(answers))
    assert len(fake_training["train"]) == len(fake_training["evaluate"]) == 1  # the first point, then it stopped


def test_helpers_are_spawned_processes(tmp_path):
    import functools
    import pickle
    import time

    from bench.claims.evaluations import Context

    done = tmp_path / "done"
    assert running.spawn_process(functools.partial(Path.touch, done)).wait() == 0 and done.exists()
    assert running.spawn_process(functools.partial(os._exit, 3)).wait() == 3
    sleeper = running.spawn_process(functools.partial(time.sleep, 60))
    sleeper.stop()
    assert sleeper.wait() != 0  # terminated, not slept out
    # what a helper is given crosses to a spawned process: the real claims, the context
    helper = functools.partial(running._helper, select_claims(()), Context(tmp_path, 200, "cpu"), 2, 1)
    assert pickle.loads(pickle.dumps(helper)).args[0] == select_claims(())


def test_tabulate_only_writes_the_tables_of_what_is_there_and_trains_nothing(registry, fake_training, tmp_path):
    registry.add("toy-fas", _toy_fas_claim())
    req = Request(only=["toy-fas"], work=tmp_path / "work", out=tmp_path / "claims.md")
    run(req)  # two seeds
    lines = []
    outcomes, written = run(replace(req, seeds=3, tabulate_only=True), log=lines.append)
    assert len(fake_training["train"]) == len(fake_training["evaluate"]) == 4  # nothing more
    assert set(outcomes[0].figures.seeds("gan", "synth-casia->replay", None, TEST_HTER)) == {0, 1}
    assert outcomes[0].trained == outcomes[0].evaluated == 0 and "4 of 6 grid points evaluated" in lines[0]
    text = (tmp_path / "claims.md").read_text()
    assert "**Verdict: not enough seeds**" in text and "--tabulate-only" not in text  # Request.command: the CLI's line
    # an empty work directory: tables of n = 0, still nothing trained
    run(replace(req, work=tmp_path / "empty", tabulate_only=True))
    assert len(fake_training["train"]) == 4 and not (tmp_path / "empty" / "weights").exists()


def test_dry_run_counts_what_is_done(registry, fake_training, tmp_path):
    registry.add("toy-fas", _toy_fas_claim())
    req = Request(only=["toy-fas"], work=tmp_path / "work", out=tmp_path / "claims.md")
    from bench.claims.command import dry_run

    assert dry_run(req)[-1].startswith("4 grid points: 4 trainings and 4 evaluations to do (0 trained")
    run(req)
    lines = dry_run(replace(req, seeds=3))
    assert lines[-1].startswith("6 grid points: 2 trainings and 2 evaluations to do (4 trained, 4 evaluated")
    assert sum(line.endswith(": done") for line in lines) == 4


# --------------------------------------------------------------------------- end to end on a shrunk world


@pytest.fixture
def tiny_fas_world(monkeypatch, tmp_path):
    """A few subjects per anti-spoofing domain, in a fresh cache folder (as tests/test_export.py does)."""
    from bench.data.synth import fas as synth_fas
    from bench.data.synth.fas import SynthFASLayout
    from bench.data.synth.world import FAS_DOMAINS

    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(synth_fas, "SYNTH_FAS", {d: SynthFASLayout(train=2, dev=2, test=2, sessions=1, frames_per_video=2)
                                                 for d in FAS_DOMAINS})


def test_tiny_fas_claim_end_to_end(registry, tiny_fas_world, tmp_path, monkeypatch):
    import models_zoo.training
    from models_zoo.checkpoint import card_path

    registry.add("toy-fas", _toy_fas_claim(seeds=2, epochs=1))
    trained = []
    real = models_zoo.training.train_variant
    monkeypatch.setattr(models_zoo.training, "train_variant", lambda *a, **k: trained.append(a) or real(*a, **k))
    docs = tmp_path / "zoo.md"
    docs.write_text(f"# Zoo\n\n{BEGIN}\nplaceholder\n{END}\n\nthe rest\n")
    r = CliRunner().invoke(main, ["claims", "--only", "toy-fas", "--work", str(tmp_path / "work"),
                                  "--out", str(tmp_path / "claims.md"), "--docs", str(docs)])
    assert r.exit_code == 0, r.output
    assert len(trained) == 4 and "[4/4] evaluated" in r.output
    text = (tmp_path / "claims.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `gan` |") or line.startswith("| `multiloss` |")]
    assert len(rows) == 2 and all(row.split("|")[2].strip() == "2" for row in rows)  # n = 2 seeds
    assert all(re_number(row.split("|")[3]) for row in rows)
    assert "**Verdict: not enough seeds**" in text and "> the GAN-pre-trained model" in text
    assert docs.read_text().startswith(f"# Zoo\n\n{BEGIN}\n") and docs.read_text().endswith(f"{END}\n\nthe rest\n")
    assert "### `toy-fas`" in docs.read_text()
    weights = sorted((tmp_path / "work" / "weights").glob("*.safetensors"))
    card = json.loads(card_path(weights[0]).read_text())
    assert card["training_command"].startswith("facebench train --model depth-gan-spoof") and card["protocol"] == \
        "synth-casia->replay"
    evaluations = sorted((tmp_path / "work" / "evaluations").glob("*.json"))
    assert len(evaluations) == 4 and json.loads(evaluations[0].read_text())["sha256"] == card["sha256"]
    r = CliRunner().invoke(main, ["claims", "--only", "toy-fas", "--work", str(tmp_path / "work"),
                                  "--out", str(tmp_path / "claims.md")])
    assert r.exit_code == 0 and len(trained) == 4 and "evaluating" not in r.output
    assert (tmp_path / "claims.md").read_text().split("\n", 3)[3] == text.split("\n", 3)[3]  # same figures


def re_number(cell: str) -> bool:
    """A shown mean with its interval: `12.5 [3.1, 21.9]` (markdown-escaped brackets)."""
    import re

    return re.fullmatch(r"\s*\d+\.\d \\\[-?\d+\.\d, -?\d+\.\d\\\]\s*", cell) is not None


@pytest.mark.slow
def test_tiny_fr_claim_end_to_end_through_the_runner(registry, tmp_path, monkeypatch):
    """The FR path: trainings on a shrunk FR world, attacked with the claims suite through the runner's store."""
    from bench.data.synth import fr as synth_fr
    from bench.data.synth.fr import SynthFRSplits
    from bench.store import ResultsStore

    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(synth_fr, "SYNTH_FR", SynthFRSplits(  # 16 identities for one P x K batch; 1 000+ dev impostor pairs
        train_ids=range(0, 16), train_per_id=2, dev_ids=range(20, 36), dev_per_id=3, test_ids=range(40, 48),
        test_per_id=3, test_pairs_per_kind=10))
    claim = Claim("toy-fr", "toy", "fr", "c as robust as r, sooner", "a test",
                  (Arm("r", "triplet-adv"), Arm("c", "contrastive-triplet", (("pretrain_epochs", 1), ("warmup_epochs", 0)),
                                                axis_option="finetune_epochs", shared_stages=True)),
                  ("synth-fr",), fr_measures(), "fr-attacks", CatchUp("r", "c", (minimal_key("impersonation", "linf"),)),
                  axis=Axis("fine-tuning epochs", (1, 2), "--finetune-epochs"), seeds=1)
    registry.add("toy-fr", claim)
    outcomes, written = run(Request(only=["toy-fr"], samples=4, work=tmp_path / "work", out=tmp_path / "claims.md"))
    figures = outcomes[0].figures
    assert set(figures.seeds("r", "synth-fr", 2, "impersonation pgd linf 8/255")) == {0}
    assert 0 <= figures.seeds("r", "synth-fr", 1, "dodging clean")[0] <= 1
    runs = ResultsStore(tmp_path / "work" / "claims-fr.h5").runs()
    assert len(runs) == 4 and {r["suite"] for r in runs} == {"claims-fr"}
    assert all(Path(r["checkpoint"]).parent == tmp_path / "work" / "weights" for r in runs)
    text = (tmp_path / "claims.md").read_text()
    assert "*impersonation on `synth-fr`" in text and "**Verdict: not enough seeds**" in text
    evaluated = len(list((tmp_path / "work" / "evaluations").glob("*.json")))
    outcomes, _ = run(Request(only=["toy-fr"], samples=4, work=tmp_path / "work", out=tmp_path / "claims.md"))
    assert outcomes[0].trained == outcomes[0].evaluated == 0 and evaluated == 4
    assert running.weights_path(tmp_path / "work", points(claim)[0]).exists()
    # c's fine-tunings continued its one shared start (pre-training only: no warm-up, no adversarial fine-tuning)
    cards = [json.loads(p.read_text()) for p in sorted((tmp_path / "work" / "weights").glob("contrastive-triplet_*.json"))]
    start = next(c for c in cards if c["training"]["stage_epochs"]["finetune"] == 0)
    assert len(cards) == 3 and "adversarial" not in start["training"]
    assert all(c["training"]["stages_from"]["sha256"] == start["sha256"] for c in cards if c is not start)
