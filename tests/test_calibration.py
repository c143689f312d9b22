"""Difficulty calibration of the embedded world, measured with the tiny baselines on held-out data."""
import numpy as np
import pytest
import torch

from bench.protocols import get_protocol
from bench.protocols.calibration import measure
from bench.evaluation import embed
from models_zoo import get_variant
from models_zoo.checkpoint import load_checkpoint, shipped_weights

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def fr_test_rates() -> dict:
    """The shipped baseline's match rates on the held-out test pairs at its dev threshold (FAR 1e-3)."""
    model = get_variant("facenet-baseline").build("tiny").eval()
    card = load_checkpoint(model, shipped_weights("facenet-baseline", "tiny"))
    tau = card["dev"]["threshold"]
    proto = get_protocol("synth-fr")
    rates = {}
    for kind in ("genuine", "impostor"):
        pairs = proto.test_pairs(kind, None, 0, 64)
        s = (embed(model, pairs.probes, CPU) * embed(model, pairs.references, CPU)).sum(1).numpy()
        rates[kind] = float(np.mean(s >= tau))
    return rates


def test_fr_verification_is_not_saturated(fr_test_rates):
    """The world keeps hard pairs: held-out verification accuracy of the shipped baseline at its dev threshold (FAR
    1e-3) at most 99 %, so a better model still has room to show it (issue 16's 95 % TAR target alone asks for at
    least 97.5 % at a test FAR of 0)."""
    rates = fr_test_rates
    accuracy = (rates["genuine"] + 1 - rates["impostor"]) / 2
    assert accuracy <= 0.99, rates


def test_fr_genuine_pairs_sit_well_above_the_threshold(fr_test_rates):
    """Issue 16's target, set before the 2026-12-06 zoo was trained: the shipped baseline keeps genuine pairs well
    above its dev FAR = 1e-3 threshold on the held-out test pairs (test TAR at least 95 %), with at most 1 % of the
    600 test impostor pairs matching. Met since the baseline trains on P = 32 identities per batch (2026-12-07,
    docs/datasets.md); at P = 16 it was 92.5 %. The shipped seed: seeds 1 and 2 of the recipe give 94.7 and 96.0 %."""
    assert fr_test_rates["genuine"] >= 0.95 and fr_test_rates["impostor"] <= 0.01, fr_test_rates


@pytest.fixture(scope="module")
def oulu_pair():
    """The tiny binary liveness net (30 epochs, seed 0) intra-domain on OULU and leave-one-out onto OULU."""
    return measure("synth-oulu").test, measure("synth-ocim->o").test


@pytest.mark.slow
def test_fas_intra_low_and_leave_one_out_clearly_higher(oulu_pair):
    """Binary tiny liveness net, 30 epochs: intra-domain ACER <= 5 %; the unseen domain's HTER at
    least 5 points above the intra-domain HTER (measured on 2026-12-06: 0.0 % and 20.3 %, docs/datasets.md)."""
    intra, lodo = oulu_pair
    intra_acer, intra_hter, lodo_hter = intra.acer, intra.hter, lodo.hter
    assert intra_acer <= 0.05, intra_acer
    assert lodo_hter >= intra_hter + 0.05, (intra_hter, lodo_hter)


@pytest.mark.slow
@pytest.mark.xfail(strict=True, reason="issue 16: MSU is not yet learnable inside itself for this network (4.4 % "
                                       "intra-domain ACER: darker live test faces under the laptop webcam rejected; "
                                       "its 15 training subjects drew lighter skin than its 20 test ones, docs/datasets.md)")
def test_fas_domain_gap_like_the_field(oulu_pair):
    """Issue 16's target with one leave-one-out protocol: intra-domain ACER at most 3 % in each of the four
    domains (CDCN on OULU-NPU protocol 1: 0.2-1 %), and the HTER on unseen OULU at least 3x their mean (SSDG:
    7-16 %). The OULU pair alone meets it on this machine (0.0 % intra ACER, 20.3 % leave-one-out, 2026-12-06); the
    three small domains add about a minute of training."""
    intra_oulu, lodo = oulu_pair
    acer = {"oulu": intra_oulu.acer}
    for domain in ("msu", "casia", "replay"):  # MSU first: the domain short of the target (so xfail costs one training)
        acer[domain] = measure(f"synth-{domain}").test.acer
        assert acer[domain] <= 0.03, acer
    assert acer["oulu"] <= 0.03, acer
    assert lodo.hter >= 3 * np.mean(list(acer.values())), (acer, lodo.hter)


def test_shipped_anti_spoofing_weights_are_evaluated_on_their_cards_protocol(capsys):
    """`python -m bench.protocols.calibration --weights W` (the docs/zoo.md HTER figures) reads the protocol and the
    input size from the card, and refuses a face-recognition checkpoint."""
    from bench.protocols.calibration import evaluate_checkpoint, main
    from bench.errors import BadInputError

    result = evaluate_checkpoint(shipped_weights("depth-gan-spoof", "tiny"))
    assert result.protocol == "depth-gan-spoof on synth-ocim->o"
    assert 0.0 < result.test.hter < 0.5 and result.dev.acer < 0.1
    # the dev rates are the source domains' dev split (CASIA, Replay-Attack, MSU), the test ones OULU's test split
    assert (result.dev.n_live, result.dev.n_attack) == (165, 495) and (result.test.n_live, result.test.n_attack) == (360, 1440)
    with pytest.raises(BadInputError, match="not an anti-spoofing model"):
        main(["--weights", str(shipped_weights("facenet-baseline", "tiny"))])
