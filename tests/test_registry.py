import pytest

from attacks import ATTACKS, make_attack
from bench.suites import SUITES
from bench.protocols import PROTOCOLS
from bench.errors import BadInputError, UnknownNameError
from bench.registry import Registry
from models_zoo import VARIANTS, get_variant


def test_builtin_entries_are_registered():
    assert "facenet-baseline" in VARIANTS
    assert {"fgsm", "pgd"} <= set(ATTACKS.names())
    assert "quick" in SUITES
    assert "synth-fr" in PROTOCOLS


def test_unknown_name_suggests_close_match():
    with pytest.raises(UnknownNameError, match="did you mean facenet-baseline"):
        get_variant("facenet-baselin")


def test_duplicate_registration_is_refused():
    reg = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(ValueError):
        reg.add("a", 2)


def test_variant_builds_declared_task_and_embedding():
    import torch

    spec = get_variant("facenet-baseline")
    assert spec.task == "fr"
    model = spec.build("tiny").eval()
    size = spec.input_size["tiny"]
    emb = model(torch.rand(3, 3, size, size))
    assert emb.shape[0] == 3
    assert torch.allclose(emb.norm(dim=1), torch.ones(3), atol=1e-5)


def test_attack_parameters_are_typed_and_validated():
    assert make_attack("pgd", {"steps": "20"}).steps == 20
    with pytest.raises(BadInputError, match="steps"):
        make_attack("pgd", {"steps": -1})
    with pytest.raises(BadInputError, match="no parameter"):
        make_attack("pgd", {"stepz": 3})
    with pytest.raises(BadInputError, match="must be int"):
        make_attack("pgd", {"steps": "many"})


@pytest.mark.parametrize("norm,eps,msg", [("linf", 2.0, "outside"), ("l3", 0.1, "unknown norm"), ("linf", -0.1, "outside")])
def test_budget_and_norm_refused_before_work(norm, eps, msg):
    with pytest.raises(BadInputError, match=msg):
        make_attack("pgd").check(norm, eps)
