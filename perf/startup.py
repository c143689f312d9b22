"""Start-up time of the CLI: wall time of `facebench --help`, usage errors and the listings, each in a new process.

`python -m perf.startup` runs every command `--repeats` times (5) and prints the median, min and max wall time
of each; `--reference PATH` also times the same commands on another checkout (the code under PATH, e.g. the
main branch before a change), interleaved with this one round by round, so that load on a shared machine hits
both alike; `--json FILE` writes every timing. No torch is needed here: each command is its own process
(`python -m bench.cli ...`), which is what a user waits for.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (
    ("--help",),
    ("run",),  # click's usage error: --model is missing
    ("run", "--model", "mypkg.models:build"),  # a user model without --task
    ("run", "--model", "nope"),  # an unknown model
    ("models",),
    ("suites",),
    ("attacks",),
    ("protocols",),
)


def time_command(root: Path, args: tuple[str, ...]) -> tuple[float, int]:
    """Seconds of wall time and the exit status of `python -m bench.cli ARGS` with the code under `root`."""
    env = dict(os.environ, PYTHONPATH=str(root))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bench.cli", *args], cwd=root, env=env, capture_output=True, timeout=300)
    return time.perf_counter() - start, proc.returncode


def measure(checkouts: dict[str, Path], repeats: int) -> dict[str, dict[str, dict]]:
    """{checkout: {command: {seconds: [...], median, min, max, exit}}}, rounds interleaved across checkouts."""
    out: dict[str, dict[str, dict]] = {name: {} for name in checkouts}
    for _ in range(repeats):
        for args in COMMANDS:
            for name, root in checkouts.items():
                seconds, code = time_command(root, args)
                entry = out[name].setdefault(" ".join(args), {"seconds": [], "exit": code})
                entry["seconds"].append(round(seconds, 3))
    for commands in out.values():
        for entry in commands.values():
            s = entry["seconds"]
            entry.update(median=round(statistics.median(s), 3), min=min(s), max=max(s))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m perf.startup", description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5, help="Runs of each command (default 5).")
    parser.add_argument("--reference", type=Path, default=None, metavar="PATH",
                        help="Another checkout to time the same commands on, interleaved (e.g. main before a change).")
    parser.add_argument("--json", type=Path, default=None, metavar="FILE", help="Write every timing here.")
    args = parser.parse_args(argv)
    checkouts = {"this": ROOT}
    if args.reference is not None:
        checkouts["reference"] = args.reference.resolve()
    results = measure(checkouts, max(1, args.repeats))
    header = f"{'command':<40}" + "".join(f"{name + ' median s':>20}{'min-max':>14}" for name in checkouts)
    print(header)
    for command in results["this"]:
        cells = "".join(f"{results[n][command]['median']:>20.2f}"
                        f"{results[n][command]['min']:>7.2f}-{results[n][command]['max']:<6.2f}" for n in checkouts)
        print(f"{'facebench ' + command:<40}{cells}")
    print(f"{args.repeats} runs each, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the end")
    if args.json:
        args.json.write_text(json.dumps({
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": platform.platform(),
            "python": platform.python_version(), "cpus": os.cpu_count(), "repeats": args.repeats,
            "checkouts": {n: str(p) for n, p in checkouts.items()}, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
