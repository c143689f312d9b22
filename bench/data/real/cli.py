"""`facebench datasets prepare`: turn an official video dataset into the facebench frame layout."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from bench.data.real.align import ALIGNERS, CROPS
from bench.data.real.registry import DATASETS
from bench.data.real.prepare import DETECTORS, prepare_dataset


def _video_datasets() -> list[str]:
    return [n for n in DATASETS.names() if getattr(DATASETS.get(n), "has_videos", False)]


@click.command("prepare", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("name", metavar="NAME")
@click.option("--src", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="The dataset's official folder, as downloaded and unpacked (read only).")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Where to write the frame layout (created if missing; must not be inside --src).")
@click.option("--frames", "frames", default=10, show_default=True, type=click.IntRange(min=1),
              help="Frames kept per video, evenly spaced from first to last.")
@click.option("--size", default=None, type=click.IntRange(min=16),
              help="Cap the longer side of the frames read to this many pixels (aspect kept). Default: original size.")
@click.option("--align", "align", default=None, type=click.Choice(ALIGNERS.names()),
              help="Save each frame's face aligned by its five landmarks instead of the whole frame: mtcnn "
                   "(MTCNN's points; crop arcface112 by default) or dlib5 (dlib's 5-point predictor; crop dlib150).")
@click.option("--crop", "crop", default=None, type=click.Choice(CROPS.names()),
              help="The aligned crop: arcface112 (ArcFace's 112x112 five-point template) or dlib150 (dlib's "
                   "150x150 chip, padding 0.25). Default: the aligner's own. Needs --align.")
@click.option("--detector", "detector", default=None, type=click.Choice(DETECTORS),
              help="What finds the face box dlib5 places its points in: haar (OpenCV's cascade, the default) "
                   "or mtcnn. Only with --align dlib5.")
def prepare(name: str, src: Path, out: Path, frames: int, size: Optional[int], align: Optional[str],
            crop: Optional[str], detector: Optional[str]) -> None:
    """Extract frames and face boxes from the videos of dataset NAME.

    NAME is one of the video datasets: oulu-npu, casia-fasd, replay-attack, msu-mfsd.

    Every video X.avi / X.mov / X.mp4 under --src becomes a folder X/ under --out, at the same
    relative place, holding --frames evenly spaced frames 0000.png, 0001.png, ... and a
    boxes.txt with the largest face OpenCV's Haar cascade finds in each frame
    ('<frame> <x> <y> <w> <h>'; frames without a face have no line). Every other file
    (protocol lists, subject lists, ...) is copied unchanged. Point facebench at --out
    afterwards. Videos already done under --out are skipped, so an interrupted run resumes.

    With --align, each saved frame is instead the aligned crop of its largest face (frames
    without a face are left out), boxes.txt is empty and landmarks.txt holds the five points
    found in each source frame ('<frame> x0 y0 ... x4 y4'). See docs/real-datasets.md.

    Examples:

        facebench datasets prepare oulu-npu --src ~/data/Oulu_NPU --out ~/data/oulu-frames

        facebench datasets prepare oulu-npu --src ~/data/Oulu_NPU --out ~/data/oulu-arcface --align mtcnn
    """
    counts = prepare_dataset(name, src, out, frames_per_video=frames, size=size, align=align, crop=crop,
                             detector=detector)
    found = f"{counts['boxes']} with a face box" if align is None else f"{counts['crop']} crops by {align}"
    click.echo(
        f"{name}: {counts['videos']} videos -> {counts['frames']} frames ({found}), "
        f"{counts['skipped']} already done, {counts['copied_files']} other files copied, into {out}",
        err=True,
    )
    for rel in counts["failed"]:
        click.echo(f"warning: could not decode {src / rel}; no frames written", err=True)
    for rel in counts["no_face"]:
        click.echo(f"warning: {align} found no face in any kept frame of {src / rel}; no frames written", err=True)
