"""benchmarks/training_scaling.py: one tiny point end to end, and its speed-up bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.ml.algorithms import TUNABLE_PARAMS
from benchmarks import training_memory, training_scaling


def test_tiny_point_records_time_memory_f1_and_stage_timings(tmp_path: Path) -> None:
    out, png = tmp_path / "scaling.json", tmp_path / "scaling.png"
    argv = ["--points", "20:2000", "--cores", "1", "--json", str(out), "--plot", str(png)]

    code = training_scaling.main([*argv, "--train-timeout", "240", "--seed", "3"])

    assert code == 0
    report = json.loads(out.read_text())
    (run,) = report["runs"]
    assert "error" not in run
    assert (run["categories"], run["cores"], run["rows"]) == (20, 1, 2000)
    assert run["wall_s"] > 0 and run["cpu_s"] > 0 and run["peak_rss_bytes"] > 0
    assert 0 < run["macro_f1"] <= 1
    assert run["timings"]["fit + calibrate"] > 0 and run["fit_rate_per_core"] > 0
    assert run["speedup_wall"] == pytest.approx(1.0)
    assert report["extrapolation"]["label"] == "extrapolated"
    assert png.read_bytes().startswith(b"\x89PNG")


def test_fit_speedup_limit_is_bounded_by_the_longest_fit() -> None:
    # Five fold fits of 0.8 and a final fit of 1: 2 cores finish at 2.6 units of 5,
    # and no number of cores beats the final fit alone.
    assert training_scaling.fit_speedup_limit(1) == pytest.approx(1.0)
    assert training_scaling.fit_speedup_limit(2) == pytest.approx(5 / 2.6)
    assert training_scaling.fit_speedup_limit(16) == pytest.approx(5.0)


def test_the_memory_benchmark_runs_the_whole_job_and_leaves_the_allow_list_alone(
    tmp_path: Path,
) -> None:
    out = tmp_path / "memory.json"
    argv = ["--categories", "20", "--rows", "2000", "--json", str(out)]
    features = ["--word-features", "1000", "--char-features", "1000"]

    assert training_memory.main([*argv, *features, "--seed", "3"]) == 0

    run = json.loads(out.read_text())
    assert (run["categories"], run["rows"], run["cores"]) == (20, 2000, 1)
    assert run["params"]["clf__max_iter"] == 1
    # Every stage of a real job ran, in the child whose peak was read.
    assert {"vectorise", "fit + calibrate", "evaluate", "refit"} <= set(run["stage_seconds"])
    assert run["peak_rss_mib"] > 50
    # Only the benchmark's child may set max_iter; clients never can.
    assert "clf__max_iter" not in TUNABLE_PARAMS["linear_svc_oof_calibrated"]
