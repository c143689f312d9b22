"""Integrity checks on hand-built models whose flaw is known, and the cross-cell comparisons."""
import json
import textwrap

import h5py
import pytest
import torch
from torch import nn

from bench import checks
from bench.runner import RunConfig, run_benchmark
from bench.store import ResultsStore
from bench.tasks import VerificationTask
from models_zoo.factory import load_model, resolve_model
from tests.helpers import LinearEmbedder

MODELS = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Embedder(nn.Module):
        def __init__(self, mode="plain"):
            super().__init__()
            g = torch.Generator().manual_seed(0)
            self.proj = nn.Linear(3 * 8 * 8, 16)
            self.proj.weight.data = torch.randn(16, 3 * 8 * 8, generator=g) / 14
            self.proj.bias.data.zero_()
            self.drop = nn.Dropout(0.5)
            self.mode = mode

        def forward(self, x):
            x = F.adaptive_avg_pool2d(x, 8)
            if self.mode == "step":  # a step function: zero gradient everywhere, still in the graph
                x = torch.round(x * 4) / 4
            e = self.proj(self.drop(x.flatten(1) - 0.5))
            if self.mode == "noisy":  # explicit randomness in every forward pass
                e = e + 0.3 * torch.randn_like(e)
            if self.mode == "sneaky":  # switches itself back to train mode
                self.train()
            return F.normalize(e, dim=1)


    def plain():
        return Embedder()  # left in train mode with dropout: the runner must put it into eval mode


    def step():
        return Embedder("step")


    def noisy():
        return Embedder("noisy")


    def sneaky():
        return Embedder("sneaky")
''')

SUITE = "attacks:\n  - attack: pgd\n    eps: [4/255, 16/255]\n    params: {steps: 5}\n"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    d = tmp_path_factory.mktemp("checkmodels")
    (d / "check_models.py").write_text(MODELS)
    (d / "suite.yaml").write_text(SUITE)
    return d


def _run(models, name, tmp_path, **kw):
    store = tmp_path / f"{name}.h5"
    cfg = RunConfig(model=f"{models / 'check_models.py'}:{name}", task="fr", suite=str(models / "suite.yaml"), samples=6,
                    store=str(store), device="cpu", **kw)
    outcome = run_benchmark(cfg, progress=False)
    run = ResultsStore(store).run(outcome.run_id)
    return outcome, run, json.loads(run["integrity"]), ResultsStore(store).read_cells([s["cell_id"] for s in outcome.summaries], arrays=False)


def test_zero_gradient_model_is_flagged(models, tmp_path):
    outcome, run, integrity, cells = _run(models, "step", tmp_path)
    for goal in ("dodging", "impersonation"):
        assert "zero input gradient" in integrity[goal]["gradients"]
    assert cells and all(c.unreliable and "zero input gradient" in c.unreliable_reason for c in cells)
    assert all(s["unreliable"] for s in outcome.summaries)
    assert run["cells_unreliable"] == len(cells)


def test_train_mode_model_is_put_into_eval_and_recorded(models, tmp_path):
    outcome, run, integrity, cells = _run(models, "plain", tmp_path)
    assert run["eval_mode"] == "was in train mode; put into eval mode on load"
    for goal in ("dodging", "impersonation"):
        assert integrity[goal]["eval_mode"] == "passed"
        assert integrity[goal]["deterministic"] == "passed" and integrity[goal]["eot"] == 1  # dropout is off
        assert integrity[goal]["gradients"] == "passed"


@pytest.mark.parametrize("name", ["facenet-baseline", "cdcn"])
def test_a_zoo_model_is_built_and_loaded_in_eval_mode_so_no_train_mode_notice(name):
    """Only a user's model that really came in train mode gets the notice (the test above); the zoo's never."""
    mut = resolve_model(name)
    loaded = load_model(mut, None, torch.device("cpu"))
    assert loaded.was_training is False and not loaded.module.training


def test_model_that_switches_to_train_mode_is_flagged(models, tmp_path):
    _, _, integrity, cells = _run(models, "sneaky", tmp_path)
    assert "train mode" in integrity["dodging"]["eval_mode"]
    assert all(c.unreliable and "train mode" in c.unreliable_reason for c in cells)


def test_randomized_model_engages_eot(models, tmp_path):
    logs = []
    outcome, run, integrity, cells = _run(models, "noisy", tmp_path)
    for goal in ("dodging", "impersonation"):
        assert "not deterministic" in integrity[goal]["deterministic"] and integrity[goal]["eot"] == checks.EOT_SAMPLES
    assert all(c.attrs["eot"] == checks.EOT_SAMPLES for c in cells)
    assert not any("not deterministic" in c.unreliable_reason for c in cells)  # handled by EOT
    # with EOT switched off the same randomness makes every cell unreliable, and the run says so
    out2 = run_benchmark(RunConfig(model=f"{models / 'check_models.py'}:noisy", task="fr", suite=str(models / "suite.yaml"),
                                   samples=6, store=str(tmp_path / "off.h5"), device="cpu", eot=1),
                         progress=False, log=logs.append)
    assert all(s["unreliable"] and "not deterministic" in s["unreliable_reason"] for s in out2.summaries)
    assert any("EOT disabled" in line for line in logs)


def test_eot_task_averages_gradients():
    class Noisy(nn.Module):
        def __init__(self):
            super().__init__()
            self.base = LinearEmbedder(3 * 4 * 4)

        def forward(self, x):
            return self.base(x + 0.1 * torch.randn_like(x))

    torch.manual_seed(0)
    model = Noisy()
    x = torch.rand(4, 3, 4, 4)
    task = VerificationTask(model, model.base(torch.rand(4, 3, 4, 4)).detach(), 0.5, "impersonation")
    assert not checks.check_determinism(task, x).passed
    assert checks.check_determinism(VerificationTask(model.base, task.references, 0.5, "impersonation"), x).passed

    eot = checks.EOTTask(task, 16)
    calls = []
    orig = task.scores
    task.scores = lambda z: (calls.append(1), orig(z))[1]
    torch.manual_seed(0)
    xg = x.clone().requires_grad_(True)
    g = torch.autograd.grad(eot.margin(xg).sum(), xg)[0]
    assert len(calls) == 16
    task.scores = orig
    # reproduce the same draws one by one and compare with the mean
    torch.manual_seed(0)
    per = []
    for _ in range(16):
        xs = x.clone().requires_grad_(True)
        per.append(torch.autograd.grad(task.margin(xs).sum(), xs)[0])
    assert torch.allclose(g, torch.stack(per).mean(0), atol=1e-6)
    assert eot.subset(torch.tensor([1])).k == 16


def test_eval_mode_check_on_a_module_in_train_mode():
    m = nn.Sequential(nn.Linear(2, 2), nn.Dropout())
    assert not checks.check_eval_mode(m).passed
    assert checks.check_eval_mode(m.eval()).passed


def _cell(cid, attack, eps, broken, n=100, goal="dodging", **params):
    return {"cell_id": cid, "goal": goal, "attack": attack, "params": params, "norm": "linf", "eps": eps / 255,
            "n": n, "robust_accuracy": (n - broken) / n}


def test_cross_cell_checks_flag_exactly_the_inconsistent_cells():
    cells = [
        _cell("f2", "fgsm", 2, 30), _cell("f8", "fgsm", 8, 60),
        _cell("p2", "pgd", 2, 40, steps=10), _cell("p4", "pgd", 4, 55, steps=10), _cell("p8", "pgd", 8, 50, steps=10),  # falls
        _cell("q8", "pgd", 8, 58, steps=20),  # below fgsm at 8/255 (60 - 1 slack) and... above pgd-10: fine on steps
        _cell("r8", "pgd", 8, 45, steps=40),  # more steps, fewer broken than pgd-20 (58)
        _cell("s8", "square", 8, 90),  # black-box beats every white-box at 8/255
        _cell("i2", "fgsm", 2, 20, goal="impersonation"), _cell("j2", "pgd", 2, 20, goal="impersonation", steps=10),
    ]
    flags = checks.cross_cell_checks(cells)
    assert any("falls with eps" in r for r in flags["p8"])
    assert any("single-step" in r for r in flags["q8"]) and any("single-step" in r for r in flags["p8"])
    assert any("more steps" in r for r in flags["r8"])
    assert all(any("black-box square" in r for r in flags[c]) for c in ("f8", "p8", "q8", "r8"))
    assert "s8" not in flags and "f2" not in flags and "p2" not in flags and "p4" not in flags
    assert "i2" not in flags and "j2" not in flags  # other goal, consistent
    # within the slack (one sample in a hundred) nothing is flagged
    assert checks.cross_cell_checks([_cell("a", "pgd", 2, 41, steps=10), _cell("b", "pgd", 4, 40, steps=10)]) == {}


def test_success_falling_with_eps_is_flagged_for_iterative_attacks_only():
    """One full-size FGSM step can overshoot on a curved model (seen on the shipped cdcn: 16/16 broken at
    2/255, 7/16 at 8/255); the monotonicity check is for attacks that search the ball."""
    cells = [_cell("f2", "fgsm", 2, 16, n=16), _cell("f8", "fgsm", 8, 7, n=16),
             _cell("p2", "pgd", 2, 16, n=16, steps=10), _cell("p8", "pgd", 8, 12, n=16, steps=10),
             _cell("c2", "cascade", 2, 16, n=16, stages=[{"attack": "apgd", "params": {"steps": 5}}]),
             _cell("c8", "cascade", 8, 10, n=16, stages=[{"attack": "apgd", "params": {"steps": 5}}])]
    flags = checks.cross_cell_checks(cells)
    assert not any("falls with eps" in r for r in flags.get("f8", []))
    assert any("falls with eps" in r for r in flags["p8"]) and any("falls with eps" in r for r in flags["c8"])


def test_card_check():
    card = {"dev": {"threshold": 0.85, "dev_tar": 0.69}}
    assert checks.check_card(card, {"threshold": 0.8502, "dev_tar": 0.695}, "fr").passed
    bad = checks.check_card(card, {"threshold": 0.85, "dev_tar": 0.60}, "fr")
    assert not bad.passed and "dev_tar 0.600 vs card 0.690" in bad.detail
    assert checks.check_card({}, {"threshold": 0.5}, "fr") is None


def test_store_flags_merge_and_old_cells_read_reliable(tmp_path):
    from tests.test_store import _cell as store_cell  # a complete stored cell

    st = ResultsStore(tmp_path / "s.h5")
    cell = store_cell("c1")
    st.write_cell(cell)
    with h5py.File(tmp_path / "s.h5", "a") as f:  # a v1.0 cell has neither field
        del f["cells"]["c1"].attrs["unreliable"]
        del f["cells"]["c1"].attrs["unreliable_reason"]
        del f.attrs["schema_minor"]
    (old,) = st.read_cells(["c1"], arrays=False)
    assert not old.unreliable and old.unreliable_reason == ""
    st.flag_cell("c1", ["a"])
    st.flag_cell("c1", ["a", "b"])
    (new,) = st.read_cells(["c1"], arrays=False)
    assert new.unreliable and new.unreliable_reason == "a; b"
    with h5py.File(tmp_path / "s.h5", "r") as f:
        assert int(f.attrs["schema_minor"]) == 1


# ---------------------------------------------------------------------------- the large-budget check


def _briefly_trained_example(steps: int):
    """The model of docs/adding-a-model.md (examples/my_fr_model.py), trained as a newcomer would briefly: a few
    Adam steps of a cosine-softmax head over the identities of synth-fr's training faces."""
    import importlib.util
    from pathlib import Path

    import numpy as np
    import torch.nn.functional as F

    from bench.protocols import get_protocol

    path = Path(__file__).resolve().parent.parent / "examples" / "my_fr_model.py"
    spec = importlib.util.spec_from_file_location("fbtest_checks_my_fr_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.build()
    train = get_protocol("synth-fr").train_set(64)
    labels = torch.from_numpy(np.unique(train.identities, return_inverse=True)[1]).long()
    head = nn.Linear(model.head.out_features, int(labels.max()) + 1, bias=False)
    opt = torch.optim.Adam(list(model.parameters()) + list(head.parameters()), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(labels), (32,), generator=g)
        x = torch.from_numpy(train.images[idx.numpy()]).permute(0, 3, 1, 2).float() / 255
        loss = F.cross_entropy(16 * F.linear(model(x), F.normalize(head.weight, dim=1)), labels[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval().requires_grad_(False)


def _goal_batch(model, goal: str, samples: int):
    """What prepare_goal hands the checks: the goal's clean-correct items at the model's dev threshold."""
    from bench.protocols import get_protocol

    protocol = get_protocol("synth-fr")
    threshold = protocol.calibrate(model, protocol.dev_split(64), torch.device("cpu")).operating_point.threshold
    items = protocol.goal_items(goal, model, threshold, samples, 0, 64, torch.device("cpu"))
    with torch.no_grad():
        todo = (~items.task.broken_on_clean(items.task.scores(items.x))).nonzero().squeeze(1)
    return items.task.subset(todo), items.x[todo]


@pytest.mark.slow
def test_large_eps_check_is_not_weaker_than_the_suites_pgd_on_a_briefly_trained_resnet():
    """Issue 17: the example ResNet of docs/adding-a-model.md, trained for 10 steps, was flagged `unreliable`: the
    former check, PGD-40 with fixed 6.4/255 steps at 128/255, broke 1 of these 8 impostor pairs (12 % < 95 %), no
    more than the quick suite's PGD-10 at 4/255 does. The check now breaks (nearly) all of them and passes. (The
    untrained example's case, 0 of 8 where PGD-10 at 4/255 breaks half, is the sample output of `facebench show`
    in docs/adding-a-model.md, which tests/test_user_models.py re-runs.) Those figures are of the world before issue
    16's FR recalibration; on today's, PGD-10 breaks none of these pairs at 4/255 and one at 8/255."""
    from attacks import make_attack

    model = _briefly_trained_example(steps=10)
    task, x = _goal_batch(model, "impersonation", 8)
    assert len(x) == 8
    suite = make_attack("pgd", {"steps": 10}).run(task, x, "linf", 8 / 255, torch.Generator().manual_seed(0))
    assert suite.success.any()  # the suite's budget breaks some: the model's gradients are usable
    result = checks.check_large_eps(task, x, torch.Generator().manual_seed(0))
    assert result.passed, result.detail


class Shattered(nn.Module):
    """Shattered gradients (Athalye et al., 2018): a high-frequency ripple of the input, tiny in value, dominates
    the input gradient, so its sign is noise; an embedding of the rippled input, normalised."""

    def __init__(self) -> None:
        super().__init__()
        self.base = LinearEmbedder(3 * 8 * 8, dim=16)

    def forward(self, x):
        x = nn.functional.adaptive_avg_pool2d(x, 8)
        return self.base(x + 0.01 * torch.sin(3000 * x))


def test_large_eps_check_flags_shattered_gradients():
    """A model whose input gradient points nowhere useful stays flagged, however the check's steps are scheduled;
    the same pairs without the ripple are broken."""
    torch.manual_seed(0)
    model = Shattered()
    x = torch.rand(16, 3, 8, 8)
    refs = model.base(torch.rand(16, 3, 8, 8)).detach()
    task = VerificationTask(model, refs, 0.9, "impersonation")
    assert not task.success(x).any()
    result = checks.check_large_eps(task, x, torch.Generator().manual_seed(0))
    assert not result.passed and "gradient masking suspected" in result.detail
    smooth = VerificationTask(lambda z: model.base(nn.functional.adaptive_avg_pool2d(z, 8)), refs, 0.9, "impersonation")
    assert checks.check_large_eps(smooth, x, torch.Generator().manual_seed(0)).passed


ZOO_CHECK_SAMPLES = 8


def _shipped_variants() -> list[str]:
    from models_zoo import VARIANTS
    from models_zoo.checkpoint import shipped_weights

    return [n for n in VARIANTS.names() if shipped_weights(n, "tiny") is not None]


@pytest.mark.slow
@pytest.mark.parametrize("variant", _shipped_variants())
def test_no_shipped_zoo_model_fails_the_per_goal_checks(variant):
    """Every shipped tiny variant passes the per-goal checks (the large-budget one included) on each of its default
    goals, through prepare_goal as a run calls it, at its card's dev threshold and on a few samples."""
    from bench.compute import prepare_goal
    from bench.goals import default_goals
    from bench.protocols import get_protocol
    from models_zoo import get_variant
    from models_zoo.factory import create_model

    spec = get_variant(variant)
    loaded = create_model(variant, "cpu")
    protocol = get_protocol(spec.default_protocol)
    size = spec.input_size["tiny"]
    for goal in default_goals(spec.task):
        items = protocol.goal_items(goal, loaded.module, float(loaded.card["dev"]["threshold"]), ZOO_CHECK_SAMPLES, 0,
                                    size, torch.device("cpu"))
        prepared = prepare_goal(items, loaded.module, None, ZOO_CHECK_SAMPLES, 0)
        assert [c.name for c in prepared.checks] == ["deterministic", "gradients", "large_eps", "eval_mode"]
        assert prepared.reasons() == [], f"{variant} {goal}: {prepared.reasons()}"
