"""benchmarks/training_scaling.py: one tiny point end to end, and its speed-up bound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import training_scaling


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
