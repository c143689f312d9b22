import numpy as np
import pytest

from bench.data.synth.fr import SYNTH_FR, pair_list
from bench.data.synth.world import FaceWorld
from bench.protocols import get_protocol


def test_render_is_deterministic_and_well_formed():
    w = FaceWorld(seed=0, size=48)
    a = w.render([1, 2, 3], [0, 0, 1])
    b = FaceWorld(seed=0, size=48).render([1, 2, 3], [0, 0, 1])
    assert a.images.shape == (3, 48, 48, 3) and a.images.dtype == np.uint8
    assert np.array_equal(a.images, b.images)
    assert a.depth.shape == (3, 48, 48) and a.depth.min() >= 0 and a.depth.max() <= 1
    assert a.depth.max() > 0.3  # a face has relief


def test_same_identity_varies_and_identities_differ():
    w = FaceWorld(seed=0, size=48)
    r = w.render([5, 5, 6], [0, 1, 0])
    assert not np.array_equal(r.images[0], r.images[1])  # nuisance changes between samples
    assert FaceWorld(seed=1, size=48).identity(5)["face_w"] != w.identity(5)["face_w"]


def test_synth_fr_splits_are_disjoint():
    train, dev, test = set(SYNTH_FR.train_ids), set(SYNTH_FR.dev_ids), set(SYNTH_FR.test_ids)
    assert not (train & dev) and not (train & test) and not (dev & test)
    for kind in ("genuine", "impostor"):
        for a, _, b, _ in pair_list(kind, 0):
            assert a in test and b in test
            assert (a == b) == (kind == "genuine")


def test_test_pairs_are_deterministic_per_seed():
    p = get_protocol("synth-fr")
    a = p.test_pairs("genuine", 5, seed=0, size=32)
    b = p.test_pairs("genuine", 5, seed=0, size=32)
    c = p.test_pairs("genuine", 5, seed=1, size=32)
    assert a.pair_ids == b.pair_ids and np.array_equal(a.probes, b.probes)
    assert a.pair_ids != c.pair_ids


def test_fas_frames_carry_every_label():
    from bench.data.synth.world import DOMAINS

    w = FaceWorld(seed=0, size=32)
    media = ["live"] + list(DOMAINS["casia"].media)
    r = w.render_fas([7] * len(media), list(range(len(media))), [0] * len(media), media, "casia")
    assert r.images.shape == (len(media), 32, 32, 3)
    assert list(r.live) == [True] + [False] * (len(media) - 1)
    assert set(r.species) == {"live", "print", "replay"}
    assert r.depth[0].max() > 0.3 and np.all(r.depth[1:] == 0)  # spoofs have all-zero depth labels
    assert r.reflection[0].max() == 0  # no screen glare on a live face


def test_frames_of_a_video_are_close_but_not_identical():
    w = FaceWorld(seed=0, size=32)
    r = w.render_fas([7, 7, 7], [0, 0, 1], [0, 1, 0], ["live"] * 3, "oulu")
    same_video = np.abs(r.images[0].astype(int) - r.images[1]).mean()
    other_video = np.abs(r.images[0].astype(int) - r.images[2]).mean()
    assert 0 < same_video < other_video


def test_unknown_medium_for_domain_is_refused():
    import pytest

    with pytest.raises(ValueError, match="has no medium"):
        FaceWorld(0, 32).render_fas([1], [0], [0], ["print-cut"], "oulu")


def test_synth_fas_splits_are_disjoint():
    """Per domain: train / dev / test subjects as its layout says, disjoint across splits and domains."""
    from bench.data.synth import fas as synth_fas
    from bench.data.synth.world import DOMAINS, FAS_DOMAINS

    assert set(synth_fas.SYNTH_FAS) == set(FAS_DOMAINS)
    seen: set[int] = set()
    for domain in FAS_DOMAINS:
        layout = synth_fas.SYNTH_FAS[domain]
        splits = {s: set(synth_fas.subject_ids(domain, s)) for s in ("train", "dev", "test")}
        assert {s: len(ids) for s, ids in splits.items()} == {"train": layout.train, "dev": layout.dev, "test": layout.test}
        for ids in splits.values():
            assert not ids & seen
            assert not ids & (set(SYNTH_FR.train_ids) | set(SYNTH_FR.dev_ids) | set(SYNTH_FR.test_ids))
            seen |= ids
        media = ("live",) + DOMAINS[domain].media
        keys = synth_fas.split_frames(domain, "dev")
        assert keys == sorted(keys, key=lambda k: k[:3])  # (subject, video, frame) order
        videos = sorted({(s, v, m) for s, v, _, m in keys})
        assert len(videos) == layout.dev * layout.sessions * len(media)
        for subject, video, medium in videos:
            assert subject in splits["dev"] and video < layout.sessions * len(media)
            assert video == synth_fas.video_index(domain, synth_fas.session_of(domain, video), medium)
            assert synth_fas.medium_of(domain, video) == medium
        first = min(splits["dev"])
        assert {(synth_fas.session_of(domain, v), m) for s, v, m in videos if s == first} == {
            (k, m) for k in range(layout.sessions) for m in media}
        assert len(keys) == len(videos) * layout.frames_per_video


def test_synth_fas_default_layouts():
    from bench.data.synth.fas import SYNTH_FAS, SynthFASLayout

    assert SYNTH_FAS == {
        "oulu": SynthFASLayout(train=20, dev=15, test=20, sessions=6),
        "casia": SynthFASLayout(train=15, dev=5, test=30, sessions=3),
        "replay": SynthFASLayout(train=15, dev=15, test=20, sessions=2),
        "msu": SynthFASLayout(train=15, dev=5, test=20, sessions=2),
    }
    assert {layout.frames_per_video for layout in SYNTH_FAS.values()} == {3}
    p = get_protocol("synth-mi->c")
    assert p.splits["train"] == "msu: 15 subjects x 2 sessions; replay: 15 subjects x 2 sessions"
    assert p.splits["test"] == "casia: 30 subjects x 3 sessions" and p.frames_per_video == 3


def test_fas_sessions_share_their_capture_setup_across_subjects():
    """Every video of a session is shot with the session's camera in its room; other sessions differ."""
    from bench.data.synth.world import DOMAINS, FAS_DOMAINS, _frame_nuisance

    for name in FAS_DOMAINS:
        dom = DOMAINS[name]
        assert len(dom.setups) >= 2, name
        per_video = 1 + len(dom.media)
        for s, setup in enumerate(dom.setups):
            a = _frame_nuisance(0, dom, 7, s * per_video, 0)  # live video of session s, subject 7
            b = _frame_nuisance(0, dom, 123, s * per_video + 1, 2)  # a medium's video, another subject
            assert a["resolution"] == b["resolution"] == setup.resolution
            assert abs(a["blur"] - setup.blur) < 0.3 and abs(b["blur"] - setup.blur) < 0.3
            assert abs(a["jpeg"] - setup.jpeg) <= 3 and abs(b["jpeg"] - setup.jpeg) <= 3
            assert np.abs(a["bg"] - b["bg"]).max() < 0.1, f"{name}: one room, two backgrounds"
        rooms = {setup.room for setup in dom.setups}
        if len(rooms) > 1:
            other = next(i for i, st in enumerate(dom.setups) if st.room != dom.setups[0].room)
            a = _frame_nuisance(0, dom, 7, 0, 0)
            c = _frame_nuisance(0, dom, 7, other * per_video, 0)
            assert np.abs(a["bg"] - c["bg"]).max() > 0.1, f"{name}: two rooms look alike"


def test_each_camera_renders_colour_its_own_way():
    """A FAS set-up's colour rendering (saturation around the luma, contrast around mid-grey) is a property of the
    camera shared by its session's videos; in-the-wild photos (the FR world) have none, so they render unchanged."""
    from bench.data.synth.world import DOMAINS, _color_rendering, _frame_nuisance, _nuisance

    img = np.random.default_rng(0).uniform(0, 1, (8, 8, 3)).astype(np.float32)
    assert np.allclose(_color_rendering(img, 1.0, 1.0), img, atol=1e-6)
    grey = _color_rendering(img, 0.0, 1.0)
    assert np.allclose(grey[..., 0], grey[..., 1], atol=1e-6) and np.allclose(grey[..., 1], grey[..., 2], atol=1e-6)
    flat = _color_rendering(img, 1.0, 0.5)
    assert np.allclose(flat - 0.5, (img - 0.5) * 0.5, atol=1e-6)
    msu = DOMAINS["msu"]
    per_video = 1 + len(msu.media)
    laptop, phone = (_frame_nuisance(0, msu, 7, s * per_video, 0) for s in (0, 1))
    assert abs(laptop["saturation"] - msu.setups[0].saturation) < 0.05 < phone["saturation"] - laptop["saturation"]
    assert "saturation" not in _nuisance(0, DOMAINS["celeb"], 7, 0)


def test_one_printer_or_screen_per_medium_and_domain():
    """The device's own properties are fixed per (domain, sub-type); only how it is held varies."""
    from bench.data.synth.media import DEVICE_KEYS, medium_params
    from bench.data.synth.world import DOMAINS

    stats = DOMAINS["oulu"].medium
    dev = lambda: np.random.default_rng([0, 909, 1, 0])  # noqa: E731
    p1 = medium_params(np.random.default_rng(1), "print-glossy", stats, device=dev())
    p2 = medium_params(np.random.default_rng(2), "print-glossy", stats, device=dev())
    free1 = medium_params(np.random.default_rng(1), "print-glossy", stats)
    free2 = medium_params(np.random.default_rng(2), "print-glossy", stats)
    for key in ("gamut", "paper", "tint", "black"):
        assert key in DEVICE_KEYS
        assert np.allclose(p1[key], p2[key]), key
    assert not all(np.allclose(free1[k], free2[k]) for k in ("gamut", "paper", "tint"))
    assert p1["scale"] != p2["scale"]  # placement is per video
    assert abs(p1["halftone"] / p2["halftone"] - 1) < 0.11  # the dot pitch, seen from a slightly other distance


def _nuisance_before_framing(seed, domain, identity, sample):
    """`_nuisance` as it was before `Domain.framing` and `Domain.light_elevation` (a frozen copy, for comparison)."""
    from bench.data.synth.world import _light_class, _rng

    r = _rng(seed, 202, domain.code, identity, sample)
    p = domain.pose
    az = r.uniform(-np.pi, np.pi)
    elev = r.uniform(0.35, 1.2)
    out = {
        "yaw": float(np.clip(r.normal(0, 0.22 * p), -0.5, 0.5)),
        "pitch": float(np.clip(r.normal(0, 0.12 * p), -0.3, 0.3)),
        "roll": float(np.clip(r.normal(0, 0.10 * p), -0.3, 0.3)),
        "scale": r.uniform(0.88, 1.10),
        "tx": r.normal(0, 0.04),
        "ty": r.normal(0, 0.04),
        "smile": r.uniform(-0.3, 1.0),
        "eye_open": r.uniform(0.55, 1.0),
        "light": np.array([np.cos(az) * np.cos(elev), np.sin(az) * np.cos(elev), np.sin(elev)]),
        "ambient": r.uniform(*domain.ambient),
        "gain": r.uniform(*domain.gain),
        "cast": 1 + r.normal(0, domain.color_cast, 3) + np.asarray(domain.cast_bias),
        "bg": r.uniform(0.05, 0.95, (2, 3)),
        "blobs": r.uniform(0, 1, (4, 6)),
        "occluder": r.uniform() < domain.occlusion,
        "occ": r.uniform(0, 1, 6),
        "blur": r.uniform(*domain.blur),
        "noise": r.uniform(*domain.noise),
        "jpeg": int(r.integers(domain.jpeg[0], domain.jpeg[1] + 1)),
        "hair_jitter": r.normal(0, 0.03),
        "glasses_off": r.uniform() < 0.2,
        "noise_seed": int(r.integers(2**31)),
    }
    if domain.illumination is not None:
        _light_class(out, r, domain.illumination)
    else:
        out["illumination"] = 3 if out["gain"] * (out["ambient"] + 0.5) < 0.45 else 0
    if domain.sharpen[1] > 0 or domain.resolution[0] < 1:
        out["sharpen"] = r.uniform(*domain.sharpen)
        out["resolution"] = r.uniform(*domain.resolution)
    return out


def _same(a: dict, b: dict, skip=()) -> bool:
    return set(a) == set(b) and all(np.array_equal(a[k], b[k]) for k in a if k not in skip)


def test_framing_and_light_elevation_at_their_defaults_leave_every_draw_unchanged():
    import dataclasses

    from bench.data.synth.world import DOMAINS, _nuisance

    # issue 16: the CelebA / LFW stand-in is framed and lit like aligned crops; the anti-spoofing domains are not
    assert (DOMAINS["celeb"].framing, DOMAINS["celeb"].light_elevation) == (0.3, (0.8, 1.5))
    for dom in DOMAINS.values():
        if dom.name == "celeb":  # the same draws at the defaults
            dom = dataclasses.replace(dom, framing=1.0, light_elevation=(0.35, 1.2))
        assert dom.framing == 1.0 and dom.light_elevation == (0.35, 1.2), dom.name
        for identity in range(0, 400, 7):
            for sample in range(4):
                for seed in (0, 3):
                    new, old = _nuisance(seed, dom, identity, sample), _nuisance_before_framing(seed, dom, identity, sample)
                    assert _same(new, old), (dom.name, identity, sample, seed)


def test_aligned_framing_and_a_light_elevation_range_transform_only_their_keys():
    import dataclasses

    from bench.data.synth.world import DOMAINS, _nuisance

    celeb = DOMAINS["celeb"]
    aligned = dataclasses.replace(celeb, framing=0.3, light_elevation=(0.8, 1.5))
    old_elev, new_elev, old_scale, new_scale = [], [], [], []
    for identity in range(300):
        for sample in range(3):
            old = _nuisance_before_framing(0, celeb, identity, sample)
            new = _nuisance(0, aligned, identity, sample)
            assert _same(new, old, skip=("scale", "tx", "ty", "light")), (identity, sample)
            assert new["scale"] == pytest.approx(0.99 + (old["scale"] - 0.99) * 0.3, abs=1e-12)
            assert new["tx"] == pytest.approx(old["tx"] * 0.3, abs=1e-12)
            assert new["ty"] == pytest.approx(old["ty"] * 0.3, abs=1e-12)
            # the same azimuth; the elevation is the same uniform draw mapped onto (0.8, 1.5) instead of (0.35, 1.2)
            e_old, e_new = np.arcsin(old["light"][2]), np.arcsin(new["light"][2])
            assert e_new == pytest.approx(0.8 + (e_old - 0.35) / 0.85 * 0.7, abs=1e-9)
            assert np.arctan2(new["light"][1], new["light"][0]) == pytest.approx(
                np.arctan2(old["light"][1], old["light"][0]), abs=1e-9)
            old_elev.append(e_old), new_elev.append(e_new), old_scale.append(old["scale"]), new_scale.append(new["scale"])
    assert 0.8 <= min(new_elev) and max(new_elev) <= 1.5 and min(old_elev) < 0.8
    assert np.ptp(new_scale) == pytest.approx(0.3 * np.ptp(old_scale))  # the spread shrunk around 0.99
    assert 0.88 <= min(old_scale) < 0.9 and 0.99 - 0.3 * 0.11 <= min(new_scale)


@pytest.mark.xfail(strict=True, reason="the renderer's blends paint only inside the batch's bounding box of mask > 1e-3 "
                                       "(bench.data.synth.world._blend, _blend_patches), so a pixel whose mask is in "
                                       "(0, 1e-3] depends on the other frames of its batch; fixing it changes the "
                                       "rendered data, so it waits for the next change of the world (docs/datasets.md)")
def test_a_frame_is_a_function_of_its_key_alone():
    """Rendering a split in other batches leaves every frame as it is. Today the shipped data are deterministic
    because each split is rendered in fixed chunks; of MSU's first 128 test frames, rendered in one call and in
    calls of 8, one print frame differs (75 values by one grey level, 2026-12-07). Strict: the day it passes,
    the chunking note of docs/datasets.md is to be rewritten."""
    from bench.data.synth.fas import frame_chunks, render_frames

    keys = frame_chunks("msu", "test", 128)[0]
    whole = render_frames(keys, "msu", 64).images
    parts = np.concatenate([render_frames(keys[i:i + 8], "msu", 64).images for i in range(0, len(keys), 8)])
    assert np.array_equal(whole, parts)
