"""`facebench datasets prepare`: turn an official video dataset into the facebench frame layout."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import click

from bench.data.real.registry import DATASETS
from bench.data.real.prepare import prepare_dataset


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
              help="Cap the longer side of saved frames to this many pixels (aspect kept). Default: original size.")
def prepare(name: str, src: Path, out: Path, frames: int, size: Optional[int]) -> None:
    """Extract frames and face boxes from the videos of dataset NAME.

    NAME is one of the video datasets: oulu-npu, casia-fasd, replay-attack, msu-mfsd.

    Every video X.avi / X.mov / X.mp4 under --src becomes a folder X/ under --out, at the same
    relative place, holding --frames evenly spaced frames 0000.png, 0001.png, ... and a
    boxes.txt with the largest face OpenCV's Haar cascade finds in each frame
    ('<frame> <x> <y> <w> <h>'; frames without a face have no line). Every other file
    (protocol lists, subject lists, ...) is copied unchanged. Point facebench at --out
    afterwards. Videos already done under --out are skipped, so an interrupted run resumes.

    Example:

        facebench datasets prepare oulu-npu --src ~/data/Oulu_NPU --out ~/data/oulu-frames
    """
    counts = prepare_dataset(name, src, out, frames_per_video=frames, size=size)
    click.echo(
        f"{name}: {counts['videos']} videos -> {counts['frames']} frames ({counts['boxes']} with a face box), "
        f"{counts['skipped']} already done, {counts['copied_files']} other files copied, into {out}",
        err=True,
    )
    for rel in counts["failed"]:
        click.echo(f"warning: could not decode {src / rel}; no frames written", err=True)
