"""The zoo's max pooling (`models_zoo.backbones.max_pool2d`): the same values and gradients as PyTorch's, in every
zoo network, and still a leaf for the BatchNorm folding's trace."""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from models_zoo import VARIANTS, get_variant
from models_zoo.backbones import MaxPool2d, max_pool2d


def _inputs():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 8, 11, 10, generator=g).relu()  # ReLU: ties (zeros) in many windows
    return {"contiguous": x, "channels_last": x.contiguous(memory_format=torch.channels_last),
            "strided": torch.randn(3, 8, 22, 10, generator=g)[:, :, ::2]}


@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "strided"])
@pytest.mark.parametrize("args", [(3, 2, 1, 1, False), (3, 2, 1, 1, True), (2, None, 0, 1, False), (3, 1, 1, 2, False)])
def test_max_pool_gives_pytorchs_values_and_gradients_and_keeps_the_layout(layout, args):
    x = _inputs()[layout]
    with torch.no_grad():
        ours, theirs = max_pool2d(x, *args), F.max_pool2d(x, *args[:4], ceil_mode=args[4])
    assert torch.equal(ours, theirs)
    assert ours.is_contiguous() == theirs.is_contiguous()
    grads = []
    for fn in (max_pool2d, lambda v, *a: F.max_pool2d(v, *a[:4], ceil_mode=a[4])):
        xg = x.detach().clone().requires_grad_()
        out = fn(xg, *args)
        out.backward(torch.arange(out.numel(), dtype=out.dtype).view_as(out))
        grads.append(xg.grad)
    assert torch.equal(*grads)


def test_every_zoo_network_pools_through_it_with_the_same_outputs():
    """No plain `nn.MaxPool2d` is left in a zoo network (tiny, and paper built on the meta device); the tiny networks'
    outputs equal those of the same network with PyTorch's layer put back."""
    for name in VARIANTS.names():
        spec = get_variant(name)
        if spec.external is not None:
            continue
        with torch.device("meta"):
            paper = spec.build("paper")
        model = spec.build("tiny").eval()
        for net in (paper, model):
            assert not any(type(m) is nn.MaxPool2d for m in net.modules()), name
        ours = [m for m in model.modules() if type(m) is MaxPool2d]
        size = spec.input_size["tiny"]
        x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            fast = model(x)
            for m in ours:
                m.forward = lambda v, m=m: nn.MaxPool2d.forward(m, v)
            plain = model(x)
        assert all(torch.equal(a, b) for a, b in zip(torch.utils._pytree.tree_leaves(fast),
                                                     torch.utils._pytree.tree_leaves(plain))), name


def test_batchnorm_folding_traces_it_as_a_leaf():
    from bench.precision import fold_batchnorm

    model = get_variant("facenet-baseline").build("tiny").eval()
    folded = fold_batchnorm(model, torch.rand(2, 3, 64, 64))
    assert folded.folded == 13, folded.note
    assert any(node.op == "call_function" and node.target is max_pool2d for node in folded.module.graph.nodes)
