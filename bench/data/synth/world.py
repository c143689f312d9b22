"""The embedded face world: a deterministic procedural renderer of faces.

Every identity is a parameter vector (head shape, skin, eyes, brows, nose, mouth, hair, facial hair,
glasses). A face is rendered from a 2.5D height field (which is also its ground-truth depth map)
with Lambertian shading under a random light, small pose changes, expression, occlusion, background
clutter, blur, noise and JPEG. The same (seed, domain, identity, sample) always gives the same image.

The renderer is vectorised over a batch in numpy; it uses no external assets.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import cv2
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.ndimage import gaussian_filter

from bench.data.synth.media import SUBTYPES, MediumStats, medium_params, present
from bench.data.synth.raster import soft as _soft
from bench.data.synth.raster import stack_params as _stack

WORLD_VERSION = 1

SKIN_LIGHT = np.array([0.96, 0.80, 0.70])
SKIN_DARK = np.array([0.36, 0.23, 0.16])
HAIR_PALETTE = np.array(
    [
        [0.06, 0.05, 0.05],  # black
        [0.25, 0.15, 0.08],  # dark brown
        [0.45, 0.30, 0.16],  # brown
        [0.80, 0.66, 0.38],  # blond
        [0.62, 0.27, 0.12],  # red
        [0.62, 0.62, 0.62],  # grey
    ]
)
IRIS_PALETTE = np.array(
    [
        [0.25, 0.14, 0.06],  # brown
        [0.10, 0.07, 0.05],  # dark
        [0.25, 0.45, 0.70],  # blue
        [0.30, 0.50, 0.30],  # green
        [0.45, 0.48, 0.50],  # grey
    ]
)


@dataclass(frozen=True)
class CaptureSetup:
    """One fixed capture set-up of a FAS domain: a camera in a room, shared by every video of a session."""

    name: str
    blur: float  # gaussian sigma in pixels at 64 px
    noise: float
    jpeg: int
    resolution: float = 1.0  # sensor resolution relative to the frame (< 1: upscaled, soft and blocky)
    sharpen: float = 0.0  # in-camera unsharp-mask amount
    cast: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the camera's white-balance error
    # the camera's colour rendering (its colour matrix and tone curve): < 1 washes colours out towards grey /
    # flattens the tones around mid-grey, > 1 boosts them (phones render punchy images, old webcams flat ones)
    saturation: float = 1.0
    contrast: float = 1.0
    room: int = 0  # the room (background), shared by the set-ups with the same number
    ambient: tuple[float, float] = (0.3, 0.55)
    illumination: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # P(normal, strong, back, dark)


@dataclass(frozen=True)
class Domain:
    """A capture domain: camera, light and post-processing statistics of one data source."""

    name: str
    code: int
    description: str
    blur: tuple[float, float] = (0.0, 0.8)  # gaussian sigma in pixels at 64 px
    noise: tuple[float, float] = (0.005, 0.03)
    jpeg: tuple[int, int] = (60, 95)
    pose: float = 1.0  # scale of yaw / pitch / roll spread
    ambient: tuple[float, float] = (0.25, 0.55)
    color_cast: float = 0.04  # spread of the white-balance error
    occlusion: float = 0.05  # probability of an occluder (hand, scarf, microphone)
    gain: tuple[float, float] = (0.85, 1.1)
    cast_bias: tuple[float, float, float] = (0.0, 0.0, 0.0)  # the domain's mean white-balance error
    sharpen: tuple[float, float] = (0.0, 0.0)  # in-camera unsharp-mask amount (phones sharpen, halos at edges)
    resolution: tuple[float, float] = (1.0, 1.0)  # sensor resolution relative to the frame (< 1: upscaled, soft and blocky)
    # how tightly the face is framed: scales the spread of the crop's scale (around 0.99) and shift (around 0);
    # < 1 for aligned crops (CelebA img_align, LFW funnelled), 1 for today's free framing
    framing: float = 1.0
    light_elevation: tuple[float, float] = (0.35, 1.2)  # the key light's elevation out of the image plane (rad; pi / 2: frontal)
    media: tuple[str, ...] = ()  # presentation-attack sub-types captured in this domain
    medium: MediumStats = MediumStats()
    illumination: Optional[tuple[float, float, float, float]] = None  # P(normal, strong, back, dark)
    stands_for: str = ""
    # FAS domains: the capture set-up of each session (session s uses setups[s % len]); they replace the
    # camera, room and light drawn from the ranges above
    setups: tuple[CaptureSetup, ...] = ()

    def session_of(self, video: int) -> int:
        """The capture session of a subject's video number (each session: one live video + one per medium)."""
        return video // (1 + len(self.media))


DOMAINS: dict[str, Domain] = {
    d.name: d
    for d in [
        Domain("celeb", 0, "in-the-wild photos of celebrities (CelebA / LFW stand-in)", stands_for="CelebA, LFW",
               # aligned crops (CelebA img_align, LFW funnelled): the face centred and sized, lit from the front
               framing=0.3, light_elevation=(0.8, 1.5)),
        Domain(
            "oulu", 1, "mobile phones, three sessions of light and background; glossy and matte prints, phone and monitor replay",
            blur=(0.2, 0.6), noise=(0.01, 0.025), jpeg=(85, 95), pose=0.5, ambient=(0.3, 0.6), occlusion=0.0,
            cast_bias=(0.03, 0.0, -0.03), sharpen=(0.8, 1.6), media=("print-glossy", "print-matte", "replay-phone", "replay-monitor"),
            medium=MediumStats(halftone_period=(2.2, 2.8), halftone_amp=(0.35, 0.5), moire_period=(1.6, 2.0), moire_strength=(0.3, 0.4), chroma=1.0,
                               tint=(0.94, 1.0, 1.08), paper=(0.95, 0.95, 0.92), band_period=(6.0, 8.0), band_angle=(-0.3, 0.3),
                               band_strength=(0.15, 0.25)),
            illumination=(0.6, 0.15, 0.15, 0.1), stands_for="OULU-NPU",
            # six phones in three rooms (OULU-NPU: 6 phones x 3 sessions of light and background)
            setups=(
                CaptureSetup("phone-1, open office, window behind", 0.30, 0.012, 92, sharpen=1.2, saturation=1.20, contrast=1.08, cast=(0.03, 0.0, -0.03), room=0, illumination=(0.5, 0.0, 0.5, 0.0)),
                CaptureSetup("phone-2, meeting room", 0.45, 0.020, 88, sharpen=0.8, saturation=1.12, contrast=1.05, cast=(0.0, 0.02, -0.02), room=1),
                CaptureSetup("phone-3, small office, window in front", 0.25, 0.015, 94, sharpen=1.6, saturation=1.25, contrast=1.10, cast=(0.05, 0.0, -0.05), room=2, illumination=(0.4, 0.6, 0.0, 0.0)),
                CaptureSetup("phone-4, open office, window behind", 0.50, 0.025, 86, sharpen=1.0, saturation=1.10, contrast=1.04, cast=(0.02, -0.01, 0.0), room=0, illumination=(0.5, 0.0, 0.5, 0.0)),
                CaptureSetup("phone-5, meeting room", 0.35, 0.018, 90, sharpen=1.4, saturation=1.18, contrast=1.08, cast=(0.04, 0.01, -0.04), room=1),
                CaptureSetup("phone-6, small office, window in front", 0.40, 0.022, 89, sharpen=0.9, saturation=1.14, contrast=1.06, cast=(0.01, 0.0, -0.02), room=2, illumination=(0.4, 0.6, 0.0, 0.0)),
            ),
        ),
        Domain(
            "casia", 2, "low / normal / high quality cameras; warped and cut prints, tablet replay",
            blur=(0.0, 1.0), noise=(0.005, 0.04), jpeg=(50, 95), pose=0.7, ambient=(0.3, 0.55), occlusion=0.0,
            cast_bias=(0.0, 0.02, 0.04), resolution=(0.45, 1.0), media=("print-warped", "print-cut", "replay-tablet"),
            medium=MediumStats(halftone_period=(3.6, 4.6), halftone_amp=(0.3, 0.45), gamut=(0.6, 0.75), moire_period=(2.6, 3.2),
                               moire_strength=(0.25, 0.35), tint=(1.07, 1.0, 0.92), paper=(0.96, 0.93, 0.86), band_period=(12.0, 16.0),
                               band_angle=(0.6, 1.0), band_strength=(0.15, 0.25)),
            illumination=(0.8, 0.1, 0.05, 0.05), stands_for="CASIA-FASD",
            # three cameras of low, normal and high quality in one room (CASIA-FASD's three qualities)
            setups=(
                # a 64-px face crop of even the 640x480 low-quality camera is resolved about 3x over:
                # what the cheap cameras lose is sharpness, signal-to-noise and bit rate
                CaptureSetup("low quality", 0.8, 0.035, 60, resolution=0.75, saturation=0.70, contrast=0.80, cast=(0.0, 0.02, 0.04)),
                CaptureSetup("normal quality", 0.5, 0.020, 75, resolution=0.9, saturation=0.85, contrast=0.90, cast=(0.0, 0.02, 0.03)),
                CaptureSetup("high quality", 0.15, 0.008, 92, saturation=1.10, contrast=1.05, cast=(0.0, 0.01, 0.02)),
            ),
        ),
        Domain(
            "replay", 3, "webcam, controlled and adverse light; hard-copy prints, phone and tablet replay",
            blur=(0.4, 0.9), noise=(0.025, 0.05), jpeg=(60, 80), pose=0.5, ambient=(0.15, 0.6), occlusion=0.0,
            cast_bias=(-0.03, 0.0, 0.05), resolution=(0.6, 0.85), media=("print-matte", "replay-phone", "replay-tablet"),
            medium=MediumStats(halftone_period=(2.6, 3.2), halftone_amp=(0.3, 0.45), moire_period=(2.4, 3.0), moire_strength=(0.25, 0.35),
                               tint=(0.97, 1.05, 0.96), paper=(0.9, 0.92, 0.95), band_period=(5.0, 7.0), band_angle=(1.3, 1.8),
                               band_strength=(0.2, 0.3)),
            illumination=(0.45, 0.1, 0.2, 0.25), stands_for="Replay-Attack",
            # one webcam, a controlled scene (office light) and an adverse one (daylight, often from behind, or dark)
            setups=(
                CaptureSetup("webcam, controlled", 0.45, 0.03, 72, resolution=0.9, saturation=0.90, contrast=0.92, cast=(-0.03, 0.0, 0.05), room=0,
                             ambient=(0.35, 0.6), illumination=(0.85, 0.15, 0.0, 0.0)),
                CaptureSetup("webcam, adverse", 0.45, 0.03, 72, resolution=0.9, saturation=0.90, contrast=0.92, cast=(-0.03, 0.0, 0.05), room=1,
                             ambient=(0.15, 0.45), illumination=(0.3, 0.0, 0.4, 0.3)),
            ),
        ),
        Domain(
            "msu", 4, "laptop and android cameras; printed photos, phone and tablet video replay",
            blur=(0.3, 0.8), noise=(0.01, 0.035), jpeg=(70, 92), pose=0.6, ambient=(0.3, 0.6), occlusion=0.0,
            cast_bias=(0.05, 0.02, -0.02), sharpen=(0.2, 0.6), media=("print-glossy", "replay-phone", "replay-tablet"),
            medium=MediumStats(halftone_period=(3.0, 3.6), halftone_amp=(0.3, 0.45), moire_period=(2.2, 2.6), moire_strength=(0.25, 0.35),
                               glare=0.7, tint=(1.0, 0.96, 1.07), paper=(0.93, 0.95, 0.93), band_period=(8.0, 11.0),
                               band_angle=(-1.0, -0.6), band_strength=(0.15, 0.25)),
            illumination=(0.7, 0.2, 0.05, 0.05), stands_for="MSU-MFSD",
            # a laptop's webcam and an android phone's front camera (MSU-MFSD)
            setups=(
                CaptureSetup("laptop webcam", 0.4, 0.025, 80, resolution=0.9, saturation=0.80, contrast=0.85, cast=(0.05, 0.02, -0.02), room=0),
                CaptureSetup("android phone", 0.3, 0.015, 90, resolution=1.0, sharpen=0.5, saturation=1.20, contrast=1.10, cast=(0.03, 0.0, 0.0), room=1),
            ),
        ),
    ]
}
FAS_DOMAINS = ("oulu", "casia", "replay", "msu")
ILLUMINATION = ("normal", "strong", "back", "dark")


@dataclass(frozen=True)
class Rendered:
    """A rendered batch: uint8 images (N, S, S, 3) and depth maps in [0, 1] (N, S, S)."""

    images: np.ndarray
    depth: np.ndarray
    identities: np.ndarray
    samples: np.ndarray
    meta: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FASRendered:
    """Rendered anti-spoofing frames with every label the variants need."""

    images: np.ndarray  # uint8 (N, S, S, 3)
    depth: np.ndarray  # float32 (N, S, S): the face's height field for live frames, zeros for spoofs
    reflection: np.ndarray  # float32 (N, S, S): the screen glare map for replays, zeros otherwise
    live: np.ndarray  # bool (N,)
    species: np.ndarray  # live / print / replay
    subtype: np.ndarray  # live / print-glossy / replay-phone ...
    illumination: np.ndarray  # index into ILLUMINATION
    subjects: np.ndarray
    videos: np.ndarray
    frames: np.ndarray
    domain: str


def _rng(*keys: int) -> np.random.Generator:
    return np.random.default_rng([int(k) for k in keys])


def _frame_nuisance(seed: int, domain: "Domain", identity: int, video: int, frame: int) -> dict:
    """A video's scene (shared by its frames) with small per-frame motion and fresh sensor noise."""
    out = dict(_nuisance(seed, domain, identity, video))
    if domain.setups:
        _setup_nuisance(out, seed, domain, identity, video)
    r = _rng(seed, 606, domain.code, identity, video, frame)
    for key, sd in (("yaw", 0.03), ("pitch", 0.02), ("roll", 0.02), ("tx", 0.01), ("ty", 0.01), ("smile", 0.1)):
        out[key] = out[key] + r.normal(0, sd)
    out["noise_seed"] = int(r.integers(2**31))
    return out


def identity_params(seed: int, identity: int) -> dict[str, np.ndarray | float]:
    """The parameter vector of one identity (what makes that face that face)."""
    r = _rng(seed, 101, identity)
    tone = r.uniform(0, 1)
    skin = SKIN_LIGHT * (1 - tone) + SKIN_DARK * tone + r.normal(0, 0.025, 3)
    hair_idx = r.choice(len(HAIR_PALETTE), p=[0.3, 0.25, 0.2, 0.12, 0.06, 0.07])
    hair = np.clip(HAIR_PALETTE[hair_idx] + r.normal(0, 0.04, 3), 0, 1)
    iris = np.clip(IRIS_PALETTE[r.integers(len(IRIS_PALETTE))] + r.normal(0, 0.04, 3), 0, 1)
    lip = np.clip(skin * np.array([1.0, 0.62, 0.62]) + r.normal(0, 0.03, 3), 0, 1)
    return {
        "face_w": r.uniform(0.46, 0.72),
        "face_h": r.uniform(0.68, 0.92),
        "jaw": r.uniform(0.0, 0.40),
        "skin": np.clip(skin, 0, 1),
        "eye_dx": r.uniform(0.19, 0.31),
        "eye_y": r.uniform(-0.14, 0.0),
        "eye_r": r.uniform(0.055, 0.09),
        "eye_slant": r.uniform(-0.15, 0.15),
        "iris": iris,
        "brow_gap": r.uniform(0.09, 0.17),
        "brow_thick": r.uniform(0.018, 0.045),
        "brow_tilt": r.uniform(-0.35, 0.35),
        "nose_len": r.uniform(0.16, 0.30),
        "nose_w": r.uniform(0.05, 0.11),
        "nose_h": r.uniform(0.15, 0.35),
        "mouth_y": r.uniform(0.33, 0.50),
        "mouth_w": r.uniform(0.13, 0.25),
        "lip_t": r.uniform(0.018, 0.045),
        "lip": lip,
        "hair": hair,
        "hair_style": float(r.choice(5, p=[0.35, 0.3, 0.08, 0.17, 0.10])),  # short long bald fringe curly
        "hair_line": r.uniform(-0.72, -0.45),
        "beard": float(r.choice(3, p=[0.7, 0.12, 0.18])),
        "glasses": float(r.uniform() < 0.15),
        "frame": np.clip(r.uniform(0, 0.5, 3), 0, 1),
        "cheek": r.uniform(0.0, 0.2),
        "mole": r.uniform(-0.4, 0.4, 2) if r.uniform() < 0.3 else np.array([9.0, 9.0]),
        # complexion: a low-frequency albedo pattern fixed to the face (3 plane waves)
        "complexion": np.concatenate([r.uniform(4, 14, 3), r.uniform(0, 2 * np.pi, 3), r.uniform(0, 2 * np.pi, 3)]),
        "complexion_amp": r.uniform(0.0, 0.16),
        "brow_color": np.clip(hair * r.uniform(0.4, 1.0) + r.normal(0, 0.03, 3), 0, 1),
        "hair_tilt": r.uniform(-0.25, 0.25),
    }


def _nuisance(seed: int, domain: Domain, identity: int, sample: int) -> dict:
    """Per-image variation that is not identity: pose, expression, light, background, camera."""
    r = _rng(seed, 202, domain.code, identity, sample)
    p = domain.pose
    az = r.uniform(-np.pi, np.pi)
    elev = r.uniform(*domain.light_elevation)  # one draw whatever the range: the draws after it are unchanged
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
    if domain.framing != 1.0:  # drawn as at framing 1, then pulled towards the centre (1 leaves the draws untouched)
        out["scale"] = 0.99 + (out["scale"] - 0.99) * domain.framing
        out["tx"], out["ty"] = out["tx"] * domain.framing, out["ty"] * domain.framing
    if domain.illumination is not None:  # drawn after the rest, so other domains' draws are unchanged
        _light_class(out, r, domain.illumination)
    else:
        out["illumination"] = 3 if out["gain"] * (out["ambient"] + 0.5) < 0.45 else 0
    if domain.sharpen[1] > 0 or domain.resolution[0] < 1:  # drawn last: other domains' draws are unchanged
        out["sharpen"] = r.uniform(*domain.sharpen)
        out["resolution"] = r.uniform(*domain.resolution)
    return out


def _light_class(out: dict, r: np.random.Generator, probabilities) -> None:
    """Draw the illumination class (`ILLUMINATION`) with `probabilities` and set the light it implies."""
    c = int(r.choice(4, p=probabilities))
    out["illumination"] = c
    if c == 1:  # strong frontal light
        out["ambient"], out["gain"] = r.uniform(0.5, 0.7), r.uniform(1.1, 1.25)
        out["light"] = np.array([0.0, 0.0, 1.0])
    elif c == 2:  # back light: the face is in its own shadow
        out["ambient"], out["gain"] = r.uniform(0.25, 0.4), r.uniform(0.85, 1.05)
        out["light"] = np.array([0.0, -0.3, -0.95])
    elif c == 3:  # dark room
        out["gain"] = r.uniform(0.6, 0.8)


def _setup_nuisance(out: dict, seed: int, domain: "Domain", identity: int, video: int) -> None:
    """Replace a video's camera and room by those of its capture set-up (`Domain.setups`), with small jitter.

    Every video of a session is shot with the session's set-up: the same camera (blur, noise,
    compression, resolution, sharpening, white balance) in the same room (background), so that a
    domain's train and test subjects share a few fixed set-ups, as in the real datasets.
    """
    index = domain.session_of(video) % len(domain.setups)
    setup = domain.setups[index]
    r = _rng(seed, 707, domain.code, identity, video)
    room = _rng(seed, 808, domain.code, setup.room)
    bg, blobs = room.uniform(0.05, 0.95, (2, 3)), room.uniform(0, 1, (4, 6))
    blobs[:, :2] += r.normal(0, 0.03, (1, 2))  # the camera is placed a little differently each time
    out["bg"] = np.clip(bg + r.normal(0, 0.02, bg.shape), 0, 1)
    out["blobs"] = blobs
    out["blur"] = max(0.0, setup.blur + r.normal(0, 0.06))
    out["noise"] = setup.noise * r.uniform(0.85, 1.15)
    out["jpeg"] = int(np.clip(setup.jpeg + r.integers(-3, 4), 30, 98))
    out["resolution"], out["sharpen"] = setup.resolution, setup.sharpen
    out["cast"] = 1 + np.asarray(setup.cast) + r.normal(0, 0.01, 3)
    out["ambient"] = r.uniform(*setup.ambient)
    out["gain"] = r.uniform(0.9, 1.05)
    _light_class(out, r, setup.illumination)
    # drawn last, from their own generator: the draws above are unchanged
    tone = _rng(seed, 717, domain.code, identity, video)
    out["saturation"] = setup.saturation * tone.uniform(0.97, 1.03)
    out["contrast"] = setup.contrast * tone.uniform(0.97, 1.03)


def _gauss(x: np.ndarray, y: np.ndarray, cx, cy, sx, sy) -> np.ndarray:
    return np.exp(-(((x - cx) / sx) ** 2) - ((y - cy) / sy) ** 2)


def _planar(color) -> np.ndarray:
    """A colour (3,) or per-sample colours (N, 1, 1, 3) as float32, broadcastable against a planar (3, N, S, S) image."""
    color = np.asarray(color, dtype=np.float32)
    return color.reshape(3, 1, 1, 1) if color.ndim == 1 else np.moveaxis(color, -1, 0)


def _blend(img: np.ndarray, mask: np.ndarray, color) -> np.ndarray:
    """Paint `color` over the planar image `img` (3, N, S, S) with opacity `mask` (N, S, S).

    In place and only inside the bounding box (over the whole batch) of the mask. Planar, so that the
    mask broadcasts over the colour channels along the slow axis (element-wise the same arithmetic as
    on an interleaved (N, S, S, 3) image, several times faster).
    """
    mask = np.broadcast_to(mask, img.shape[1:])
    on = (mask > 1e-3).any(axis=0)
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    if rows.size == 0:
        return img
    win = (slice(None), slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    sub = img[(slice(None),) + win]
    delta = _planar(color) - sub  # the dtype of sub: the product below keeps it
    delta *= mask[win].astype(np.float32, copy=False)
    sub += delta
    return img


def _blend_patches(img: np.ndarray, mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, color) -> np.ndarray:
    """`_blend` of a mask that is zero outside one window per sample: mask (N, h, w) at rows (N, h), cols (N, w)
    (consecutive pixels).

    The same pixels as `_blend(img, full_mask, color)`: only the batch's bounding box of mask > 1e-3 is
    painted (elsewhere the mask counts as 0, which leaves a pixel as it is), with the same arithmetic.
    """
    n, s = img.shape[1], img.shape[2]
    h, w = mask.shape[1:]
    on = mask > 1e-3
    row_on, col_on = np.zeros(s, bool), np.zeros(s, bool)
    row_on[rows[on.any(axis=2)]] = True
    col_on[cols[on.any(axis=1)]] = True
    if not row_on.any():
        return img
    r = np.flatnonzero(row_on)
    c = np.flatnonzero(col_on)
    inside = ((rows >= r[0]) & (rows <= r[-1]))[:, :, None] & ((cols >= c[0]) & (cols <= c[-1]))[:, None, :]
    # every sample's window as one (3, N, h, w) block: a strided view of img, gathered and written back
    windows = sliding_window_view(img, (h, w), axis=(2, 3), writeable=True)
    at = (slice(None), np.arange(n), rows[:, 0], cols[:, 0])
    sub = windows[at]
    delta = _planar(color) - sub
    delta *= np.where(inside, mask, 0.0).astype(np.float32, copy=False)
    sub += delta
    windows[at] = sub
    return img


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    if sigma < 0.3:
        return img
    return gaussian_filter(img, sigma=(sigma, sigma, 0), mode="nearest", truncate=2.5)


def _color_rendering(img: np.ndarray, saturation: float, contrast: float) -> np.ndarray:
    """A camera's colour matrix and tone curve on one float image (S, S, 3): the chroma scaled by `saturation`
    around the pixel's luma (Rec. 601 weights), then the tones by `contrast` around mid-grey."""
    luma = img @ np.array([0.299, 0.587, 0.114], np.float32)
    img = luma[..., None] + np.float32(saturation) * (img - luma[..., None])
    return np.float32(0.5) + np.float32(contrast) * (img - np.float32(0.5))


def _resize(img: np.ndarray, size: int) -> np.ndarray:
    """Bilinear resize of one float image (S,S,3) to (size,size,3)."""
    from PIL import Image

    chans = [np.asarray(Image.fromarray(img[..., c].astype(np.float32), mode="F").resize((size, size), Image.BILINEAR))
             for c in range(3)]
    return np.stack(chans, axis=-1)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip (libjpeg-turbo through OpenCV: the same bytes as Pillow's encoder, 2x faster)."""
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1]


@dataclass(frozen=True)
class _Face:
    """A batch of faces in the face frame: pose, feature positions and the height field, shared by the
    painting steps of `FaceWorld._render_scene` (each array broadcasts against (N, S, S))."""

    idp: list
    nui: list
    px: float  # one pixel in image-plane units
    x: np.ndarray  # face-frame coordinates of every pixel
    y: np.ndarray
    xf: np.ndarray  # the same, shifted by the pose (the head outline)
    yf: np.ndarray
    fx: np.ndarray  # parallax of the inner features
    yaw: np.ndarray
    a: np.ndarray  # head half-width and half-height
    b: np.ndarray
    ex: np.ndarray  # eyes: half distance, height, radius
    ey: np.ndarray
    er: np.ndarray
    nl: np.ndarray  # nose: length, width, start height
    nw: np.ndarray
    nose_y0: np.ndarray
    my: np.ndarray  # mouth: height, half-width
    mw: np.ndarray
    face_mask: np.ndarray
    z: np.ndarray  # the height field
    depth: np.ndarray

    def f(self, key: str) -> np.ndarray:
        """An identity parameter of the batch."""
        return _stack(self.idp, key)

    def g(self, key: str) -> np.ndarray:
        """A nuisance parameter of the batch."""
        return _stack(self.nui, key)


def _face_geometry(idp: list[dict], nui: list[dict], u0: np.ndarray, v0: np.ndarray, px: float) -> _Face:
    """Image plane -> face frame (roll, scale, translation), feature positions and the height field (also the depth map)."""
    g = lambda k: _stack(nui, k)  # noqa: E731
    f = lambda k: _stack(idp, k)  # noqa: E731

    # image plane -> face frame (roll, scale, translation)
    roll, sc = g("roll"), g("scale")
    du, dv = (u0 - g("tx")) / sc, (v0 - g("ty")) / sc
    x = np.cos(roll) * du + np.sin(roll) * dv
    y = -np.sin(roll) * du + np.cos(roll) * dv
    yaw, pitch = g("yaw"), g("pitch")

    # --- height field (also the depth map)
    a, b, jaw = f("face_w"), f("face_h"), f("jaw")
    xf = x - yaw * 0.06
    yf = y - pitch * 0.05
    a_eff = a * (1 - jaw * np.clip(yf, 0, None) / b)
    r2 = (xf / a_eff) ** 2 + (yf / b) ** 2
    face_mask = _soft(1 - np.sqrt(r2), px * 1.2 / np.maximum(a, b))
    head = np.sqrt(np.clip(1 - r2, 0, None))

    fx = yaw * 0.22  # inner features move more with yaw (parallax)
    fy = pitch * 0.15
    ex, ey, er = f("eye_dx"), f("eye_y") + fy, f("eye_r")
    nl, nw, nh = f("nose_len"), f("nose_w"), f("nose_h")
    my, mw = f("mouth_y") + fy, f("mouth_w")
    nose_y0 = ey + 0.02
    z = 0.55 * head
    z = z + nh * _gauss(x, y, fx * 1.3, nose_y0 + nl * 0.6, nw, nl * 0.6)
    z = z - 0.07 * (_gauss(x, y, fx - ex, ey, er * 1.6, er * 1.3) + _gauss(x, y, fx + ex, ey, er * 1.6, er * 1.3))
    z = z + 0.05 * _gauss(x, y, fx, ey - f("brow_gap"), a * 0.8, 0.05)
    z = z + 0.04 * _gauss(x, y, fx, my, mw, 0.05)
    z = z + f("cheek") * (_gauss(x, y, fx - 0.3, 0.15, 0.15, 0.12) + _gauss(x, y, fx + 0.3, 0.15, 0.15, 0.12))
    z = z * face_mask
    depth = np.clip(z / 0.95, 0, 1)
    return _Face(idp, nui, px, x, y, xf, yf, fx, yaw, a, b, ex, ey, er, nl, nw, nose_y0, my, mw, face_mask, z, depth)


def _paint_skin(img: np.ndarray, face: _Face) -> tuple[np.ndarray, np.ndarray]:
    """Long hair behind the head, then the skin's albedo over the face; returns the long-hair mask too."""
    f, x, y, fx, px = face.f, face.x, face.y, face.fx, face.px
    a, b, xf, yf = face.a, face.b, face.xf, face.yf
    style = f("hair_style")
    hair_c = f("hair")
    # hair behind the head (long hair) and above the hairline
    long_mask = (style == 1) * _soft(0.7 - y, px) * _soft(1 - np.sqrt((xf / (a * 1.25)) ** 2 + ((yf + 0.05) / (b * 1.12)) ** 2), px)
    img = _blend(img, long_mask, hair_c * 0.85)
    skin = f("skin")
    cp = f("complexion")
    freq, ang, phase = cp[..., 0:3], cp[..., 3:6], cp[..., 6:9]
    pattern = sum(
        np.sin(freq[..., k] * (np.cos(ang[..., k]) * (x - fx) + np.sin(ang[..., k]) * y) + phase[..., k]) for k in range(3)
    ) / 3
    albedo = _planar(skin) * (1 + f("complexion_amp") * pattern)
    img += face.face_mask * (albedo.astype(np.float32) - img)
    return img, long_mask


def _paint_eyes(img: np.ndarray, face: _Face) -> np.ndarray:
    """Eyes (sclera, iris, pupil) and brows."""
    f, g, x, y, fx, px = face.f, face.g, face.x, face.y, face.fx, face.px
    ex, ey, er, face_mask = face.ex, face.ey, face.er, face.face_mask
    openness = g("eye_open") * (1 - 0.25 * np.clip(g("smile"), 0, 1))
    slant = f("eye_slant")
    for side in (-1, 1):
        cx = fx + side * ex
        cy = ey + side * slant * 0.05
        d = np.sqrt(((x - cx) / er) ** 2 + ((y - cy) / (er * 0.55 * openness)) ** 2)
        sclera = _soft(1 - d, 0.08) * face_mask
        img = _blend(img, sclera, np.array([0.93, 0.92, 0.90]))
        di = np.hypot(x - cx - face.yaw * 0.03, y - cy) / (er * 0.5)
        iris = _soft(1 - di, 0.1) * sclera
        img = _blend(img, iris, f("iris"))
        img = _blend(img, _soft(0.45 - di, 0.1) * sclera, np.array([0.02, 0.02, 0.02]))
        # brows
        bx = x - cx
        by = y - (cy - f("brow_gap")) - f("brow_tilt") * side * bx
        brow = _soft(f("brow_thick") - np.abs(by), px * 0.7) * _soft(er * 1.7 - np.abs(bx), px) * face_mask
        img = _blend(img, brow, f("brow_color"))
    return img


def _paint_mouth(img: np.ndarray, face: _Face) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nostrils and mouth; returns the mouth's centre line (`curve`) and the lips' mask too."""
    f, g, x, y, fx, px = face.f, face.g, face.x, face.y, face.fx, face.px
    nw, my, mw, face_mask = face.nw, face.my, face.mw, face.face_mask
    skin = f("skin")
    ny = face.nose_y0 + face.nl
    for side in (-1, 1):
        d = np.hypot((x - fx * 1.2 - side * nw * 0.55) / (nw * 0.35), (y - ny) / 0.018)
        img = _blend(img, _soft(1 - d, 0.3) * face_mask * 0.6, skin * 0.35)
    smile = g("smile")
    xm = (x - fx) / mw
    curve = my - smile * 0.05 * (1 - np.clip(xm, -1, 1) ** 2)
    lips = _soft(f("lip_t") - np.abs(y - curve), px * 0.7) * _soft(1 - np.abs(xm), 0.08) * face_mask
    img = _blend(img, lips, f("lip"))
    line = _soft(px * 0.6 - np.abs(y - curve), px * 0.5) * _soft(1 - np.abs(xm), 0.08) * face_mask
    img = _blend(img, line * 0.8, np.array([0.15, 0.05, 0.05]))
    return img, curve, lips


def _paint_mole(img: np.ndarray, face: _Face) -> np.ndarray:
    mole = face.f("mole")
    dm = np.hypot(face.x - mole[:, :, :, 0] - face.fx, face.y - mole[:, :, :, 1])
    return _blend(img, _soft(0.025 - dm, face.px * 0.5) * face.face_mask, face.f("skin") * 0.4)


def _paint_beard(img: np.ndarray, face: _Face, curve: np.ndarray, lips: np.ndarray, rng_tex: np.ndarray) -> np.ndarray:
    """Facial hair: a moustache or a full beard, textured by `rng_tex`, never over the lips."""
    f, x, y, fx, px, my, mw = face.f, face.x, face.y, face.fx, face.px, face.my, face.mw
    beard = f("beard")
    xm = (x - fx) / mw
    moustache = _soft(0.035 - np.abs(y - (curve - 0.06)), px) * _soft(mw * 1.1 - np.abs(x - fx), px)
    full = _soft(y - (my - 0.08), 0.03) * _soft(np.abs(xm) - 0.0, 1.0)
    bmask = np.where(beard == 1, moustache, 0.0) + np.where(beard == 2, np.maximum(full, moustache), 0.0)
    bmask = np.clip(bmask, 0, 1) * face.face_mask * (1 - lips) * rng_tex
    return _blend(img, bmask * 0.9, f("hair") * 0.8)


def _paint_scalp(img: np.ndarray, face: _Face, rng_tex: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scalp hair above the hairline, over the forehead; returns its mask and the head-top mask too."""
    f, g, x, y, fx, px = face.f, face.g, face.x, face.y, face.fx, face.px
    style = f("hair_style")
    hair_line = f("hair_line") + g("hair_jitter") + np.where(style == 3, 0.18, 0.0) + f("hair_tilt") * (x - fx)
    top = _soft(1 - np.sqrt((face.xf / (face.a * 1.08)) ** 2 + ((face.yf + 0.02) / (face.b * 1.06)) ** 2), px)
    curl = np.where(style == 4, 0.04 * np.sin(x * 40) * np.sin(y * 40), 0.0)
    scalp = _soft(hair_line + curl - y, px * 1.5) * top * (style != 2)
    img = _blend(img, scalp * np.clip(rng_tex * 1.1, 0, 1), f("hair"))
    return img, scalp, top


def _paint_glasses(img: np.ndarray, face: _Face) -> np.ndarray:
    f, g, x, y, fx, px, ex, ey, er = face.f, face.g, face.x, face.y, face.fx, face.px, face.ex, face.ey, face.er
    wear = (f("glasses") > 0.5) & ~(g("glasses_off") > 0.5)
    for side in (-1, 1):
        d = np.hypot(x - fx - side * ex, (y - ey) * 1.2)
        ring = _soft(0.012 - np.abs(d - er * 1.6), px * 0.5)
        img = _blend(img, ring * wear, f("frame"))
    bridge = _soft(0.012 - np.abs(y - ey + 0.02), px * 0.5) * _soft(ex - er * 1.6 - np.abs(x - fx), px * 0.5)
    return _blend(img, bridge * wear, f("frame"))


def _shade(img: np.ndarray, face: _Face, scalp: np.ndarray, top: np.ndarray, long_mask: np.ndarray, s: int) -> np.ndarray:
    """Lambertian shading on the height field's normals (face and hair lit, background flat), gain and colour cast."""
    g, nui = face.g, face.nui
    gy, gx = np.gradient(face.z + 0.3 * scalp * top, axis=(1, 2))
    k = s * 0.35
    nx_, ny_, nz_ = -gx * k, -gy * k, np.ones_like(gx)
    norm = np.sqrt(nx_**2 + ny_**2 + nz_**2)
    light = np.asarray([d["light"] for d in nui])
    ndotl = (nx_ * light[:, 0, None, None] - ny_ * light[:, 1, None, None] + nz_ * light[:, 2, None, None]) / norm
    amb = g("ambient")
    shade = amb + (1 - amb) * np.clip(ndotl, 0, None)
    lit = np.clip(face.face_mask + scalp * top + long_mask, 0, 1)
    shade = shade * lit + (0.75 + 0.25 * amb) * (1 - lit)
    return img * shade * g("gain") * _planar(g("cast"))


def _occlude(img: np.ndarray, depth: np.ndarray, u0: np.ndarray, v0: np.ndarray, px: float,
             nui: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """An occluder (a hand, a scarf, a microphone ...) over the image, cut out of the depth map."""
    occ = np.asarray([d["occ"] for d in nui])
    has = np.asarray([d["occluder"] for d in nui], dtype=np.float64)
    ox, oy = occ[:, 0] * 1.2 - 0.6, 0.2 + occ[:, 1] * 0.7
    ow, oh = 0.15 + occ[:, 2] * 0.35, 0.1 + occ[:, 3] * 0.3
    om = _soft(ow[:, None, None] - np.abs(u0 - ox[:, None, None]), px) * _soft(oh[:, None, None] - np.abs(v0 - oy[:, None, None]), px)
    img = _blend(img, om * has[:, None, None], occ[:, 3:6][:, None, None, :] * 0.9)
    depth = depth * (1 - om * has[:, None, None])
    return img, depth


class FaceWorld:
    """Deterministic renderer of the embedded face world (`seed` selects the world)."""

    def __init__(self, seed: int = 0, size: int = 64) -> None:
        self.seed = seed
        self.size = size
        self._ident_cache: dict[int, dict] = {}

    def identity(self, identity: int) -> dict:
        if identity not in self._ident_cache:
            self._ident_cache[identity] = identity_params(self.seed, identity)
        return self._ident_cache[identity]

    def render(
        self,
        identities: Sequence[int],
        samples: Sequence[int],
        domain: str = "celeb",
        batch: int = 64,
    ) -> Rendered:
        """Render live faces of `identities[i]`, sample index `samples[i]`, in `domain`."""
        identities = np.asarray(identities, dtype=np.int64)
        samples = np.asarray(samples, dtype=np.int64)
        if identities.shape != samples.shape:
            raise ValueError("identities and samples must have the same length")
        dom = DOMAINS[domain]
        images, depths = [], []
        for start in range(0, len(identities), batch):
            ids = identities[start : start + batch]
            smp = samples[start : start + batch]
            idp = [self.identity(int(i)) for i in ids]
            nui = [_nuisance(self.seed, dom, int(i), int(s)) for i, s in zip(ids, smp)]
            scene, dep = self._render_scene(idp, nui)
            img = self._camera(scene, nui)
            images.append(img)
            depths.append(dep)
        s = self.size
        return Rendered(
            images=np.concatenate(images) if images else np.zeros((0, s, s, 3), np.uint8),
            depth=np.concatenate(depths) if depths else np.zeros((0, s, s), np.float32),
            identities=identities,
            samples=samples,
            meta={"domain": domain, "world_version": WORLD_VERSION, "seed": self.seed},
        )

    def render_fas(
        self,
        subjects: Sequence[int],
        videos: Sequence[int],
        frames: Sequence[int],
        media: Sequence[str],
        domain: str,
        batch: int = 64,
    ) -> "FASRendered":
        """Render frame `frames[i]` of video `videos[i]` of subject `subjects[i]` presented as `media[i]`.

        `media[i]` is `live` or a spoof sub-type of the domain (e.g. `print-glossy`). Frames of one
        video share their scene and medium and differ by small motion and sensor noise. A spoof shows
        a photo of the subject (taken by the attacker) on its medium; its depth label is all zeros.
        """
        subjects, videos, frames = (np.asarray(a, dtype=np.int64) for a in (subjects, videos, frames))
        media = list(media)
        dom = DOMAINS[domain]
        if not (len(subjects) == len(videos) == len(frames) == len(media)):
            raise ValueError("subjects, videos, frames and media must have the same length")
        bad = sorted({m for m in media if m != "live" and m not in dom.media})
        if bad:
            raise ValueError(f"domain {domain!r} has no medium {bad} (it has {', '.join(dom.media)})")
        source_dom = Domain("source", 9, "the attacker's photos of the victims", pose=0.4, occlusion=0.0,
                            ambient=(0.4, 0.6), blur=(0.0, 0.3), noise=(0.0, 0.01), jpeg=(90, 95))
        images, depths, refl, illum = [], [], [], []
        for start in range(0, len(subjects), batch):
            sl = slice(start, start + batch)
            sub, vid, frm, med = subjects[sl], videos[sl], frames[sl], media[sl]
            idp = [self.identity(int(i)) for i in sub]
            nui = [_frame_nuisance(self.seed, dom, int(i), int(v), int(f)) for i, v, f in zip(sub, vid, frm)]
            scene, dep = self._render_scene(idp, nui)
            reflection = np.zeros(dep.shape, np.float32)
            spoof = np.array([m != "live" for m in med])
            if spoof.any():
                k = np.flatnonzero(spoof)
                params = [medium_params(_rng(self.seed, 505, dom.code, int(sub[i]), int(vid[i])), med[i], dom.medium,
                                        _rng(self.seed, 909, dom.code, dom.media.index(med[i]))) for i in k]
                src_nui = [_nuisance(self.seed, source_dom, int(sub[i]), int(vid[i])) for i in k]
                for j, i in enumerate(k):  # the attacker holds the medium so that the face looks life-size:
                    # the face of the photo lands where, and as large as, a live face of this frame would
                    photo_scale = params[j]["scale"] * (1 - params[j]["border"])
                    src_nui[j]["scale"] = nui[i]["scale"] / photo_scale
                    src_nui[j]["tx"] = (nui[i]["tx"] - params[j]["tx"]) / photo_scale
                    src_nui[j]["ty"] = (nui[i]["ty"] - params[j]["ty"]) / photo_scale
                    # and the photo was taken in the same room (the datasets' attacks re-present their own recordings)
                    src_nui[j]["bg"], src_nui[j]["blobs"] = nui[i]["bg"], nui[i]["blobs"]
                source, _ = self._render_scene([idp[i] for i in k], src_nui)
                source = source * _stack(src_nui, "gain")[..., None] * _stack(src_nui, "cast")
                cap = [nui[i] for i in k]
                u0, v0 = self._grid(len(k))
                amb = _stack(cap, "ambient")
                background = self._background(u0, v0, cap) * (0.75 + 0.25 * amb)[..., None]
                light = np.asarray([c["ambient"] + (1 - c["ambient"]) * max(c["light"][2], 0.0) for c in cap], np.float32)
                shown, r = present(np.clip(source, 0, 1), background, [med[i] for i in k], params, light)
                scene[k] = shown * _stack(cap, "gain")[..., None] * _stack(cap, "cast")
                dep[k] = 0.0
                reflection[k] = r
            images.append(self._camera(scene, nui))
            depths.append(dep)
            refl.append(reflection)
            illum.extend(d["illumination"] for d in nui)
        live = np.array([m == "live" for m in media])
        return FASRendered(
            images=np.concatenate(images),
            depth=np.concatenate(depths),
            reflection=np.concatenate(refl),
            live=live,
            species=np.array(["live" if m == "live" else SUBTYPES[m] for m in media]),
            subtype=np.array(media),
            illumination=np.asarray(illum, dtype=np.int64),
            subjects=subjects,
            videos=videos,
            frames=frames,
            domain=domain,
        )

    # ------------------------------------------------------------------ rendering
    def _grid(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        lin = ((np.arange(self.size) + 0.5) / self.size * 2 - 1).astype(np.float32)
        v0, u0 = np.meshgrid(lin, lin, indexing="ij")
        return np.broadcast_to(u0, (n, self.size, self.size)), np.broadcast_to(v0, (n, self.size, self.size))

    def _background(self, u0: np.ndarray, v0: np.ndarray, nui: list[dict]) -> np.ndarray:
        """Background clutter: a colour gradient with blurred blobs (albedo, before lighting), (N, S, S, 3)."""
        return np.ascontiguousarray(self._background_planar(u0, v0, nui).transpose(1, 2, 3, 0))

    def _background_planar(self, u0: np.ndarray, v0: np.ndarray, nui: list[dict]) -> np.ndarray:
        """`_background` as a planar image (3, N, S, S)."""
        n, s = len(nui), self.size
        px = 2.0 / s
        bg = _stack(nui, "bg")  # (N, 1, 1, 2, 3)
        t = (v0[0, :, :1] + 1) / 2  # (S, 1): the gradient is vertical
        top, bottom = bg[:, 0, 0, 0, :].T[:, :, None, None], bg[:, 0, 0, 1, :].T[:, :, None, None]
        img = np.empty((3, n, s, s), np.float32)
        img[...] = top * (1 - t) + bottom * t
        blobs = np.asarray([d["blobs"] for d in nui])
        lin = u0[0, 0].astype(np.float64)  # the pixel centres, the same along u and v
        for k in range(blobs.shape[1]):
            bx, by, br = blobs[:, k, 0] * 2 - 1, blobs[:, k, 1] * 2 - 1, 0.1 + 0.3 * blobs[:, k, 2]
            # A blob's mask is exactly 0 farther than br + 2 px from its centre (where the ramp ends), so it is
            # computed only in a window around each blob (the same window size for the batch), with the same
            # arithmetic as on the whole frame, and painted like _blend paints the whole-frame mask.
            reach = br + 3 * px
            c0, c1 = np.searchsorted(lin, bx - reach, "left"), np.searchsorted(lin, bx + reach, "right")
            r0, r1 = np.searchsorted(lin, by - reach, "left"), np.searchsorted(lin, by + reach, "right")
            w, h = int((c1 - c0).max()), int((r1 - r0).max())
            if w <= 0 or h <= 0:
                continue
            cols = np.minimum(c0, s - w)[:, None] + np.arange(w)  # (N, w), holds [c0, c1)
            rows = np.minimum(r0, s - h)[:, None] + np.arange(h)  # (N, h)
            dist = np.hypot((lin[cols] - bx[:, None])[:, None, :], (lin[rows] - by[:, None])[:, :, None])
            m = _soft(br[:, None, None] - dist, px)
            img = _blend_patches(img, m * 0.8, rows, cols, blobs[:, k, 3:6][:, None, None, :])
        return img

    def _render_scene(self, idp: list[dict], nui: list[dict]) -> tuple[np.ndarray, np.ndarray]:
        """Radiance of a live face in its scene (float RGB, before the camera) and its depth map.

        The steps paint in this order over a planar (3, N, S, S) image: background, long hair and
        skin, eyes and brows, nostrils and mouth, mole, facial hair, scalp hair, glasses; then the
        shading and an occluder.
        """
        n, s = len(idp), self.size
        u0, v0 = self._grid(n)
        face = _face_geometry(idp, nui, u0, v0, 2.0 / s)
        img = self._background_planar(u0, v0, nui)  # planar (3, N, S, S) until the end
        img, long_mask = _paint_skin(img, face)
        img = _paint_eyes(img, face)
        img, curve, lips = _paint_mouth(img, face)
        img = _paint_mole(img, face)
        rng_tex = np.stack([np.random.default_rng(d["noise_seed"]).uniform(0.6, 1.0, (s, s)) for d in nui])
        img = _paint_beard(img, face, curve, lips, rng_tex)
        img, scalp, top = _paint_scalp(img, face, rng_tex)
        img = _paint_glasses(img, face)
        img = _shade(img, face, scalp, top, long_mask, s)
        img, depth = _occlude(img, face.depth, u0, v0, face.px, nui)
        return np.ascontiguousarray(img.transpose(1, 2, 3, 0)), depth.astype(np.float32)

    def _camera(self, img: np.ndarray, nui: list[dict]) -> np.ndarray:
        """The capture camera: optics blur, sensor noise, quantisation and JPEG."""
        n, s = img.shape[0], self.size
        out = np.empty((n, s, s, 3), dtype=np.uint8)
        for i, d in enumerate(nui):
            im = _gaussian_blur(img[i], d["blur"] * s / 64)
            if d.get("resolution", 1.0) < 0.97:  # a low-resolution sensor, upscaled to the frame
                low = max(8, int(round(s * d["resolution"])))
                im = _resize(_resize(im, low), s)
            if d.get("sharpen", 0.0) > 0:
                im = im + d["sharpen"] * (im - _gaussian_blur(im, 1.0 * s / 64))
            im = im + np.random.default_rng(d["noise_seed"] + 1).normal(0, d["noise"], im.shape).astype(np.float32)
            if "saturation" in d:  # the camera's colour rendering (FAS capture set-ups), after the sensor noise
                im = _color_rendering(im, d["saturation"], d["contrast"])
            im = (np.clip(im, 0, 1) * 255 + 0.5).astype(np.uint8)
            out[i] = _jpeg(im, d["jpeg"])
        return out
