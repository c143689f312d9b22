"""dlib's face ResNet rebuilt in torch (models_zoo/external/dlib_resnet.py) on a synthetic file of its layout with
random weights (fast; the match with dlib's own descriptors is in tests/test_dlib_reference.py)."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.data.real import dlib_format as df
from models_zoo.external import dlib_resnet as dr
from tests import dlib_bytes as db


def synthetic_resnet(seed: int = 0, fc_weight=None) -> bytes:
    """A dlib file of `dr.LAYOUT` with random weights (the channel counts of dlib's network)."""
    rng = np.random.default_rng(seed)
    layers, channels = [], 3
    widths = iter([32] + [32] * 6 + [64] * 8 + [128] * 6 + [256] * 6 + [256] * 2)
    for i, step in enumerate(dr.LAYOUT):
        if step == "con":
            out = next(widths)
            down = i > 0 and dr.LAYOUT[i - 1] == "tag1" and "tag2" in dr.LAYOUT[i: i + 7]  # a residual_down
            stride, size = (2, 7) if i == 0 else ((2, 3) if down else (1, 3))
            padding = 0 if stride == 2 else size // 2
            w = rng.normal(0, (2 / (channels * size * size)) ** 0.5, size=(out, channels, size, size))
            layers.append(db.con(w.astype(np.float32), rng.normal(0, 0.01, out).astype(np.float32), stride, padding))
            channels = out
        elif step == "affine":
            layers.append(db.affine(rng.uniform(0.5, 1.0, channels), rng.normal(0, 0.1, channels)))
        elif step == "relu":
            layers.append(db.relu())
        elif step == "max_pool":
            layers.append(db.pool("max_pool", 3, 2))
        elif step == "avg_pool":
            layers.append(db.pool("avg_pool", 2, 2) if len(layers) < 120 else db.pool("avg_pool", 0, 1))
        elif step.startswith("add_prev"):
            layers.append(db.add_prev())
        elif step == "fc":
            w = fc_weight if fc_weight is not None else rng.normal(0, 0.05, size=(256, 128)).astype(np.float32)
            layers.append(db.fc_no_bias(w))
        else:
            layers.append("tag" if step.startswith("tag") else "skip")
    return db.network(layers)


@pytest.fixture(scope="module")
def resnet_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("dlib") / "synthetic_resnet.dat"
    path.write_bytes(synthetic_resnet())
    return path


def test_layout_is_dlibs_network():
    assert len(dr.LAYOUT) == 130
    assert sum(step == "con" for step in dr.LAYOUT) == 29
    assert dr.LAYOUT[:4] == ["con", "affine", "relu", "max_pool"] and dr.LAYOUT[-2:] == ["avg_pool", "fc"]


def test_builds_an_eval_mode_differentiable_descriptor_network(resnet_file):
    model = dr.build_dlib_resnet(resnet_file)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert sum(p.numel() for p in model.parameters()) + sum(b.numel() for b in model.buffers()) > 5_000_000
    x = torch.rand(2, 3, dr.INPUT_SIZE, dr.INPUT_SIZE, requires_grad=True)
    out = model(x)
    assert out.shape == (2, dr.DESCRIPTOR_SIZE)
    out.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert torch.allclose(model(x[:1]), out[:1].detach(), atol=1e-5)  # each row its own descriptor


def test_input_major_fc(tmp_path):
    """The fc weights are stored (inputs, outputs): with W = [I; 0] (256 x 128) the descriptor is the first 128 of
    the 256 pooled features."""
    weight = np.zeros((256, 128), np.float32)
    weight[:128] = np.eye(128)
    path = tmp_path / "eye.dat"
    path.write_bytes(synthetic_resnet(fc_weight=weight))
    model = dr.build_dlib_resnet(path)
    pooled = {}
    model.layers[-2].register_forward_hook(lambda m, i, o: pooled.setdefault("x", o.flatten(1)))
    x = torch.rand(2, 3, 150, 150)
    out = model(x)
    assert pooled["x"].shape == (2, 256)
    assert torch.allclose(out, pooled["x"][:, :128], atol=1e-6)


def test_stem_reads_dlibs_input_convention_without_padding(resnet_file):
    """The stem computed by hand from the file's arrays: (255 x - mean) / 256, a 7x7 stride-2 convolution without
    padding, the per-channel affine, relu, a 3x3 stride-2 max pool without padding: 150 -> 72 -> 35."""
    net = df.read_net(resnet_file)
    model = dr.build_dlib_resnet(resnet_file)
    captured = {}
    model.layers[3].register_forward_hook(lambda m, i, o: captured.setdefault("stem", o))
    x = torch.rand(1, 3, 150, 150)
    model(x)
    mean = torch.tensor([net.input["avg_red"], net.input["avg_green"], net.input["avg_blue"]]).view(1, 3, 1, 1)
    con, aff = net.layers[0].arrays, net.layers[1].arrays
    y = F.conv2d((x * 255 - mean) / 256, torch.from_numpy(con["weight"]), torch.from_numpy(con["bias"]), stride=2)
    assert y.shape[-1] == 72
    y = y * torch.from_numpy(aff["gamma"]).view(1, -1, 1, 1) + torch.from_numpy(aff["beta"]).view(1, -1, 1, 1)
    expected = F.max_pool2d(F.relu(y), 3, 2)
    assert expected.shape == (1, 32, 35, 35)
    assert torch.allclose(captured["stem"], expected, atol=1e-5)
    strided = [m for m in model.layers if isinstance(m, torch.nn.Conv2d) and m.stride != (1, 1)]
    assert len(strided) == 5 and all(m.padding == (0, 0) for m in strided)
    plain = [m for m in model.layers if isinstance(m, torch.nn.Conv2d) and m.stride == (1, 1)]
    assert all(m.padding == (1, 1) for m in plain)


def test_padded_add_zero_pads_the_smaller_at_the_end():
    a = torch.ones(1, 2, 3, 3)
    b = torch.full((1, 4, 4, 4), 2.0)
    out = dr.padded_add(a, b)
    assert out.shape == (1, 4, 4, 4)
    assert (out[:, :2, :3, :3] == 3).all() and (out[:, 2:] == 2).all() and (out[:, :, 3] == 2).all()
    assert torch.equal(dr.padded_add(b, a), out)


def test_a_file_of_another_network_is_refused_in_one_line():
    data = db.network([db.con(np.zeros((2, 3, 3, 3), np.float32), np.zeros(2, np.float32), 1, 1), db.relu()])
    with pytest.raises(df.DlibFormatError) as e:
        dr.DlibResNet(df.read_net(data, "small.dat"))
    assert "not dlib's face recognition ResNet" in str(e.value) and "\n" not in str(e.value)
