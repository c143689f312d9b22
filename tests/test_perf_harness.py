"""The performance harness runs end to end and writes a well-formed results file (no timing asserted here)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_perf(*args):
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "perf", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600)


def perf_cases(tmp_path, *args) -> tuple[subprocess.CompletedProcess, dict]:
    """Run the harness with `args`, check it succeeded; (the process, its cases by name)."""
    out = tmp_path / "perf.json"
    proc = run_perf(*args, "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    return proc, {c["name"]: c for c in json.loads(out.read_text())["cases"]}


def test_quick_run_writes_results_json(tmp_path):
    out = tmp_path / "results.json"
    proc = run_perf("--quick", "--case", "pgd-full-steps", "--case", "pgd-early-stop", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert "native pgd" in proc.stdout and str(out) in proc.stdout
    doc = json.loads(out.read_text())
    assert doc["schema"] == "facebench-perf/1"
    for key in ("date", "device", "machine", "torch", "versions", "command"):
        assert doc[key], key
    assert doc["device"] == "cpu" and doc["torch"]
    assert doc["settings"]["quick"] is True
    assert {k: doc["settings"][k] for k in ("batch", "steps", "repeats")} == {"batch": 4, "steps": 2, "repeats": 1}
    assert {c["name"] for c in doc["cases"]} == {"pgd-full-steps", "pgd-early-stop"}
    for case in doc["cases"]:
        assert case["attack"]["steps"] == 2 and case["workload"]["model"] == "facenet-baseline"
        names = {c["name"] for c in case["contenders"]}
        assert {"bare torch loop", "native pgd", "torchattacks PGD (direct)", "torchattacks-pgd", "foolbox PGD (direct)",
                "foolbox-pgd", "art PGD (direct)", "art-pgd"} <= names
        for c in case["contenders"]:
            assert len(c["seconds"]) == 1 and c["median_s"] > 0 and c["samples_per_s"] > 0
            assert c["samples"] == case["workload"]["batch"] >= 1
        bare = next(c for c in case["contenders"] if c["name"] == "bare torch loop")
        assert bare["ratio_to_bare"] == 1
        s = case["summary"]
        assert set(s["time_ratio_vs"]) == {"torchattacks", "foolbox", "art"}
        assert all(set(v) == {"direct", "adapter"} for v in s["time_ratio_vs"].values())
        assert s["ratio_to_bare"] > 0
        # the shipped FaceNet has BatchNorms: native runs on the folded forward, and the rows that say what
        # folding buys (the loop on the same forward, the engine unfolded, torchattacks folded) are there
        assert case["workload"]["bn_folded"] == 13
        assert {"bare torch loop (folded)", "native pgd (--no-fold-bn)", "torchattacks PGD (direct, folded)"} <= names
        assert s["engine_overhead"] > 0 and set(s["unfolded_time_ratio_vs"]) == {"torchattacks", "foolbox", "art"}
    full = next(c for c in doc["cases"] if c["name"] == "pgd-full-steps")
    assert "within_max_ratio" in full["summary"]


def test_one_case_without_adapters(tmp_path):
    out = tmp_path / "r.json"
    proc = run_perf("--quick", "--case", "pgd-early-stop", "--no-adapters", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    (case,) = json.loads(out.read_text())["cases"]
    assert case["name"] == "pgd-early-stop"
    assert {c["kind"] for c in case["contenders"]} == {"baseline", "floor", "native", "reference", "library"}


def test_cuda_without_a_device_is_one_clear_line(tmp_path):
    import torch

    if torch.cuda.is_available():
        return
    proc = run_perf("--device", "cuda", "--out", str(tmp_path / "r.json"))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "CUDA" in proc.stderr
    assert not (tmp_path / "r.json").exists()


def test_grid_cases_cascade_cost_and_peak_memory(tmp_path):
    proc, cases = perf_cases(tmp_path, "--quick", "--case", "cascade-cost", "--case", "peak-memory")
    assert "cascade-cost: cascade = " in proc.stdout and "peak-memory: facenet-baseline" in proc.stdout
    cascade = cases["cascade-cost"]["summary"]
    assert cascade["cascade_over_independent"] > 0 and cascade["target"] == 0.5
    assert cascade["broken_cascade"] >= 0 and len(cascade["stage_attacked"]) == 4
    assert cascade["stage_attacked"][0] == cases["cascade-cost"]["workload"]["batch"]
    memory = cases["peak-memory"]["summary"]
    assert 0.1 < memory["peak_gib"]["facenet-baseline"] < 64 and memory["limit_gib"] == 3.0


def test_budgets_together_and_forward_options_cases(tmp_path):
    proc, cases = perf_cases(tmp_path, "--quick", "--case", "budgets-together", "--case", "forward-options")
    assert "budgets-together: one stacked batch = " in proc.stdout and "forward-options: time / default" in proc.stdout
    b = cases["budgets-together"]["summary"]
    assert b["together_over_apart"] > 0 and b["samples_differing"] == 0 and len(b["broken_per_budget"]) == 3
    f = cases["forward-options"]["summary"]["time_ratio_to_default"]
    assert f["default (fp32)"] == 1 and {"channels_last", "bf16 autocast", "channels_last + bf16"} <= set(f)
    assert "torch.compile" not in f  # CUDA only


def test_fmn_vs_bisection_case(tmp_path):
    proc, cases = perf_cases(tmp_path, "--quick", "--case", "fmn-vs-bisection")
    assert "fmn-vs-bisection: FMN time = " in proc.stdout
    case = cases["fmn-vs-bisection"]
    assert {c["name"] for c in case["contenders"]} == {"fmn", "min-eps bisection"}
    assert case["attack"]["fmn"]["params"]["steps"] == 10 and case["attack"]["fmn"]["ceiling_255"] == 16  # --quick
    s = case["summary"]
    assert s["fmn_over_bisection_time"] > 0 and s["fmn_successes_adversarial_when_rechecked"] is True
    assert 0 <= s["fmn_at_or_below"] <= s["both_broken"] <= case["workload"]["batch"]
    assert set(s["median_min_eps_255"]) == set(s["broken"]) == {"fmn", "bisection"}


def test_square_queries_case_times_the_attack_against_itself_as_it_was(tmp_path):
    proc, cases = perf_cases(tmp_path, "--quick", "--case", "square-queries")
    assert "square-queries (50 queries): time / the attack as it was: " in proc.stdout
    case = cases["square-queries"]
    s = case["summary"]
    assert s["identical_results"] is True and s["broken"] == 0 and s["queries"] == 50
    assert set(s["time_ratio_to_before"]) == {"square (PyTorch pooling, every redraw built)", "square (PyTorch pooling)",
                                              "square"}
    assert s["time_ratio_to_before"]["square (PyTorch pooling, every redraw built)"] == 1
    assert all(c["samples"] == case["workload"]["batch"] >= 1 for c in case["contenders"])


@pytest.mark.slow
def test_paper_profile_workload_times_resnet50_at_160_px(tmp_path):
    """What `--device cuda` measures by default, exercised on CPU: the paper profile's network (random init)."""
    out = tmp_path / "p.json"
    proc = run_perf("--quick", "--profile", "paper", "--case", "forward-options", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    assert doc["settings"]["profile"] == "paper"
    w = doc["cases"][0]["workload"]
    assert w["profile"] == "paper" and w["input_shape"] == [3, 160, 160] and w["bn_folded"] == 53
    assert "random init" in w["weights"]


def test_render_jobs_case_writes_the_same_files_in_one_process_and_in_several(tmp_path):
    proc, cases = perf_cases(tmp_path, "--quick", "--case", "render-jobs")
    s = cases["render-jobs"]["summary"]
    assert f"render-jobs ({s['faces']} faces, {s['chunks']} chunks): {s['processes']} processes = " in proc.stdout
    assert s["identical_files"] is True and s["processes"] >= 2
    assert s["chunks"] == 2 * s["processes"] and s["faces"] == 256 * s["chunks"]  # --quick: two chunks per process
    rows = {c["name"]: c for c in cases["render-jobs"]["contenders"]}
    assert set(rows) == {"one process", f"{s['processes']} processes"}
    assert rows["one process"]["ratio_to_bare"] == 1 and s["time_ratio_to_one_process"] > 0
