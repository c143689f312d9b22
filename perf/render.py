"""The `render-jobs` case: writing the embedded world's stand-ins in one process against `render_jobs()` processes.

A cold cache renders every stand-in once (`bench.data.synth.export.ensure`); CelebA's 32 480 faces and the FAS
datasets' frames are rendered and written in chunks, by `$FACEBENCH_RENDER_JOBS` processes (default: the cores).
The case writes CelebA's first chunks (the faces a cold cache writes first, 256 per chunk, at 64 px) into a fresh
folder, once in this process and once by the processes `render_jobs()` gives, in the same rounds, and checks that
both wrote the same files. Rendering is CPU work: the case runs on the CPU whatever `--device` says.
"""
from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import tempfile
from pathlib import Path

import torch

from perf.cases import CASES, CaseResult, Settings, contender_rows, paired, register_case
from perf.timing import Contender, interleaved

SIZE, SEED = 64, 0


@contextlib.contextmanager
def _jobs(value: str):
    from bench.data.synth.export import RENDER_JOBS_ENV

    kept = os.environ.get(RENDER_JOBS_ENV)
    os.environ[RENDER_JOBS_ENV] = value
    try:
        yield
    finally:
        if kept is None:
            del os.environ[RENDER_JOBS_ENV]
        else:
            os.environ[RENDER_JOBS_ENV] = kept


@register_case("render-jobs", "the CelebA stand-in's first chunks (256 faces each, 64 px) rendered and written in one "
               "process against render_jobs() processes, same files; opt-in (about a minute)", by_default=False)
def render_jobs_case(settings: Settings) -> CaseResult:
    from bench.data.synth import export
    from bench.data.synth import fr as synth_fr

    jobs = max(2, export.render_jobs())
    per_job = 2 if settings.steps < 10 else 4  # chunks per process: 2 in a --quick smoke run
    fr = synth_fr.SYNTH_FR
    chunks = synth_fr.face_chunks(fr.train_ids, fr.train_per_id)[: per_job * jobs]
    faces = sum(len(i) for i, _ in chunks)
    work = Path(tempfile.mkdtemp(prefix="facebench-perf-render-"))
    written: dict[str, Path] = {}
    runs = itertools.count()

    def write(name: str, env_jobs: str):
        out = work / f"{name.replace(' ', '-')}-{next(runs)}"
        (out / "img_align_celeba").mkdir(parents=True)
        synth_fr.cached_world.cache_clear()  # each contender starts as a cold cache does: no identity known
        with _jobs(env_jobs):
            assert sum(export.write_celeba_faces(out, SIZE, SEED, chunks)) == faces
        old = written.get(name)
        written[name] = out
        if old is not None:
            shutil.rmtree(old)

    names = {"one process": "1", f"{jobs} processes": str(jobs)}
    cs = [Contender(name, (lambda n=name, j=j: write(n, j)), faces, "native") for name, j in names.items()]
    try:
        timings = interleaved(cs, settings.repeats, torch.device("cpu"), settings.warmup)
        digests = {name: export.tree_digest(path) for name, path in written.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = contender_rows(cs, timings, "one process")
    summary = {"processes": jobs, "chunks": len(chunks), "faces": faces,
               "time_ratio_to_one_process": rows[1]["ratio_to_bare"],
               "paired_time_ratio_to_one_process": round(paired(timings[cs[1].name], timings[cs[0].name]), 4),
               "identical_files": len(set(digests.values())) == 1}
    notes = ["ratios are to the same chunks written in one process; the processes are started in every round (as a "
             "cold cache starts them); identical_files: both wrote the same names and bytes"]
    return CaseResult("render-jobs", CASES["render-jobs"].description,
                      {"dataset": "celeba", "size": SIZE, "world_seed": SEED, "device": "cpu", "faces": faces},
                      {"attack": None, "render_jobs": jobs}, rows, summary, notes)
