"""Presentation-attack media: how a print or a screen re-presents a face photo to a camera.

Each medium takes the radiance of a source photo of the victim (float RGB, N x S x S x 3) and
returns the radiance that the capture camera sees: the photo placed in the capture scene, with the
medium's own signature (gamut, halftone or paper texture, bending and border for prints; gamma,
moire bands, glare and bezel for screens) and planar (depth-free) geometry. The camera stage
(blur, noise, JPEG) is applied afterwards by the world, as for live faces.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.data.synth.raster import soft as _soft
from bench.data.synth.raster import stack_params as _stack

SPECIES = ("live", "print", "replay")
SUBTYPES: dict[str, str] = {
    "print-glossy": "print",
    "print-matte": "print",
    "print-warped": "print",
    "print-cut": "print",
    "replay-phone": "replay",
    "replay-tablet": "replay",
    "replay-monitor": "replay",
}


@dataclass(frozen=True)
class MediumStats:
    """A capture domain's distribution of media parameters (what its printers and screens are like)."""

    halftone_period: tuple[float, float] = (2.2, 3.2)  # pixels at 64 px
    halftone_amp: tuple[float, float] = (0.15, 0.3)
    gamut: tuple[float, float] = (0.70, 0.85)  # contrast kept by the print
    paper: tuple[float, float, float] = (0.93, 0.93, 0.93)  # mean paper colour
    moire_period: tuple[float, float] = (1.6, 2.6)  # screen pixel pitch as seen by the camera, px at 64
    moire_strength: tuple[float, float] = (0.12, 0.25)
    # the aliasing of that pitch against the sensor: low-frequency bands that survive the camera blur
    band_period: tuple[float, float] = (6.0, 12.0)  # px at 64
    band_angle: tuple[float, float] = (-0.4, 0.4)  # radians
    band_strength: tuple[float, float] = (0.06, 0.14)
    gamma: tuple[float, float] = (0.75, 1.3)
    tint: tuple[float, float, float] = (0.96, 1.0, 1.06)  # mean colour balance of the screens
    glare: float = 0.5  # probability of a visible reflection on a screen
    # 0: dots and pixel grid show as luminance patterns (monochrome halftone, moire); 1: as colour
    # patterns with little luminance change (CMY rosettes of a colour printer, the RGB sub-pixels of a screen)
    chroma: float = 0.0


DEVICE_KEYS = ("halftone", "halftone_amp", "halftone_angle", "gamut", "desat", "paper", "moire", "moire_angle",
               "moire_strength", "band", "band_angle", "band_curve", "band_strength", "gamma", "tint", "black",
               "bezel", "bezel_color", "screen_gain")
"""What a printer or a screen fixes for every video shot with it: its dots, pixel pitch, colour and frame."""


def medium_params(rng: np.random.Generator, subtype: str, stats: MediumStats,
                  device: np.random.Generator | None = None) -> dict:
    """Per-video parameters of one medium instance.

    With `device` (a generator seeded by the domain and the sub-type), the printer's or screen's own
    properties (`DEVICE_KEYS`) are those of that one device, the same in every video, as a dataset
    records its attacks with one printer and a screen or two; the video changes only how the medium
    is held (placement, bending, glare) and, a little, the distance and angle at which its dots and
    pixels are seen.
    """
    params = _draw_medium(rng, subtype, stats)
    if device is None:
        return params
    fixed = _draw_medium(device, subtype, stats)
    params.update({k: fixed[k] for k in DEVICE_KEYS})
    for key in ("halftone", "moire", "band"):
        params[key] = params[key] * rng.uniform(0.95, 1.05)
    for key in ("halftone_angle", "moire_angle", "band_angle"):
        params[key] = params[key] + rng.normal(0, 0.05)
    return params


def _draw_medium(rng: np.random.Generator, subtype: str, stats: MediumStats) -> dict:
    return {
        "scale": rng.uniform(1.0, 1.45),  # often larger than the frame: edges out of view
        "angle": rng.normal(0, 0.06),
        "tx": rng.normal(0, 0.04),
        "ty": rng.normal(0, 0.04),
        "border": rng.uniform(0.04, 0.12),
        "bend": rng.uniform(0.15, 0.35) if subtype == "print-warped" else rng.uniform(0.0, 0.06),
        "halftone": rng.uniform(*stats.halftone_period),
        "halftone_amp": rng.uniform(*stats.halftone_amp),
        "halftone_angle": rng.uniform(0, np.pi),
        "gamut": rng.uniform(*stats.gamut),
        "desat": rng.uniform(0.1, 0.35),
        "paper": np.clip(np.asarray(stats.paper) + rng.normal(0, 0.02, 3), 0.7, 1.0),
        "light_grad": rng.normal(0, 0.25, 2),
        "moire": rng.uniform(*stats.moire_period),
        "moire_angle": rng.uniform(-0.3, 0.3),
        "moire_strength": rng.uniform(*stats.moire_strength),
        "band": rng.uniform(*stats.band_period),
        "band_angle": rng.uniform(*stats.band_angle),
        "band_curve": rng.uniform(-0.15, 0.15),
        "band_strength": rng.uniform(*stats.band_strength),
        "gamma": rng.uniform(*stats.gamma),
        "tint": np.asarray(stats.tint) * (1 + rng.normal(0, 0.015, 3)),
        "black": rng.uniform(0.04, 0.12),
        "glare_on": rng.uniform() < stats.glare,
        "glare_pos": rng.uniform(-0.6, 0.6, 2),
        "glare_size": rng.uniform(0.2, 0.5, 2),
        "glare_gain": rng.uniform(0.25, 0.6),
        "bezel": rng.uniform(0.05, 0.14) if subtype == "replay-phone" else rng.uniform(0.02, 0.06),
        "bezel_color": rng.uniform(0.02, 0.2),
        "screen_gain": rng.uniform(0.85, 1.1),
        "chroma": stats.chroma,
    }


def _sample_bilinear(img: np.ndarray, px: np.ndarray, py: np.ndarray) -> np.ndarray:
    """Sample images (N,S,S,3) at pixel coordinates (N,S,S) with bilinear weights (clamped at the edges)."""
    n, s = img.shape[0], img.shape[1]
    px = np.clip(px, 0, s - 1.001)
    py = np.clip(py, 0, s - 1.001)
    x0, y0 = np.floor(px).astype(np.int64), np.floor(py).astype(np.int64)
    wx, wy = (px - x0)[..., None], (py - y0)[..., None]
    flat = img.reshape(n * s * s, 3)
    base = (np.arange(n) * s * s)[:, None, None]

    def at(yy, xx):
        return flat[base + yy * s + xx]

    top = at(y0, x0) * (1 - wx) + at(y0, x0 + 1) * wx
    bot = at(y0 + 1, x0) * (1 - wx) + at(y0 + 1, x0 + 1) * wx
    return (top * (1 - wy) + bot * wy).astype(np.float32)


def present(source: np.ndarray, background: np.ndarray, subtypes: list[str], params: list[dict],
            light: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radiance seen by the camera when each source photo is presented on its medium.

    `background` is the capture scene without a face, `light` the capture light's intensity per
    sample (N,). Returns (radiance N,S,S,3, reflection cue N,S,S in [0, 1]).
    """
    n, s = source.shape[0], source.shape[1]
    lin = ((np.arange(s) + 0.5) / s * 2 - 1).astype(np.float32)
    v, u = np.meshgrid(lin, lin, indexing="ij")
    u = np.broadcast_to(u, (n, s, s))
    v = np.broadcast_to(v, (n, s, s))
    g = lambda k: _stack(params, k)  # noqa: E731
    is_print = np.array([SUBTYPES[t] == "print" for t in subtypes])[:, None, None]
    is_cut = np.array([t == "print-cut" for t in subtypes])[:, None, None]

    # where on the medium each camera pixel lands (rotation, scale, shift, bending of paper)
    ang, sc = g("angle"), g("scale")
    du, dv = (u - g("tx")) / sc, (v - g("ty")) / sc
    mu = np.cos(ang) * du + np.sin(ang) * dv
    mv = -np.sin(ang) * du + np.cos(ang) * dv
    bend = g("bend")
    mu = mu * (1 + bend * (mu**2 - 0.3))  # a bent print compresses towards its edges
    inner = 1 - g("border")
    photo = _sample_bilinear(source, (mu / inner + 1) / 2 * s - 0.5, (mv / inner + 1) / 2 * s - 0.5)
    in_photo = _soft(inner - np.maximum(np.abs(mu), np.abs(mv)), 0.02)
    in_medium = _soft(1.0 - np.maximum(np.abs(mu), np.abs(mv)), 0.02)

    # print: gamut compression, desaturation, halftone dots, paper border, planar lighting
    gray = photo.mean(axis=-1, keepdims=True)
    desat = g("desat")[..., None]
    gam = g("gamut")[..., None]
    printed = (1 - gam) * 0.5 * np.float32(0.6) + gam * ((1 - desat) * photo + desat * gray)
    hp, ha = g("halftone"), g("halftone_angle")
    cx = (np.cos(ha) * u + np.sin(ha) * v) * s / 2
    cy = (-np.sin(ha) * u + np.cos(ha) * v) * s / 2
    chroma = g("chroma")[..., None]
    shift = np.float32(2 * np.pi / 3) * np.arange(3, dtype=np.float32)  # per colour channel (CMY / RGB)
    dots = 0.5 + 0.5 * np.sin(2 * np.pi * cx / hp)[..., None] * np.sin(2 * np.pi * cy[..., None] / hp[..., None] + chroma * shift)
    printed = printed * (1 - g("halftone_amp")[..., None] * dots)
    printed = in_photo[..., None] * printed + (1 - in_photo[..., None]) * g("paper")
    lg = g("light_grad")
    planar = 1 + lg[..., 0] * u + lg[..., 1] * v
    printed = printed * (planar * light[:, None, None])[..., None]
    # cut print: the eye regions are holes showing the (darker) scene behind
    hole = np.zeros_like(u)
    for side in (-1, 1):
        hole = np.maximum(hole, _soft(0.09 - np.hypot((mu - side * 0.25) / 1.6, mv + 0.07), 0.01))
    printed = printed * (1 - (is_cut * hole)[..., None] * 0.7)

    # replay: emitted light (not lit by the scene), gamma / tint, pixel-grid moire, glare, bezel
    screen = np.clip(photo, 1e-4, 1) ** g("gamma")[..., None] * g("tint") * g("screen_gain")[..., None]
    screen = g("black")[..., None] + (1 - g("black")[..., None]) * screen
    ma = g("moire_angle")
    mx = (np.cos(ma) * u + np.sin(ma) * v) * s / 2
    my = (-np.sin(ma) * u + np.cos(ma) * v) * s / 2
    period = g("moire")
    grid = 0.5 + 0.25 * (np.cos(2 * np.pi * mx[..., None] / period[..., None] + chroma * shift) + np.cos(2 * np.pi * my / period)[..., None])
    screen = screen * (1 - g("moire_strength")[..., None] * grid)
    ba = g("band_angle")
    bx = (np.cos(ba) * u + np.sin(ba) * v + g("band_curve") * (-np.sin(ba) * u + np.cos(ba) * v) ** 2) * s / 2
    bands = 0.5 + 0.5 * np.cos(2 * np.pi * bx / g("band"))
    screen = screen * (1 - g("band_strength")[..., None] * bands[..., None])
    gp, gs = g("glare_pos"), g("glare_size")
    glare = np.exp(-(((u - gp[..., 0]) / gs[..., 0]) ** 2) - ((v - gp[..., 1]) / gs[..., 1]) ** 2)
    glare = glare * g("glare_on") * in_medium
    screen = screen + (g("glare_gain") * glare)[..., None]
    bezel_in = _soft((1 - g("bezel")) - np.maximum(np.abs(mu), np.abs(mv)), 0.015)
    screen = bezel_in[..., None] * screen + (1 - bezel_in[..., None]) * g("bezel_color")[..., None]

    medium = np.where(is_print[..., None], printed, screen)
    out = in_medium[..., None] * medium + (1 - in_medium[..., None]) * background
    reflection = np.where(is_print, 0.0, glare).astype(np.float32)
    return out.astype(np.float32), reflection
