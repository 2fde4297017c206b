"""Refitting on every row after the hold-out evaluation (issue 13, item 6)."""

from __future__ import annotations

import hashlib

from app.core.config import Settings
from app.ml.dataset import read_csv
from app.ml.evaluation import split_holdout
from app.ml.training import SPLIT_SEED, fit_model
from tests.support import TINY_CSV, Api, bearer, token_for
from tests.test_training import registry_rows, run_train


def _words(pipeline: object) -> set[str]:
    features = pipeline.named_steps["features"]  # type: ignore[attr-defined]
    return set(features.transformer_list[0][1].vocabulary_)


def test_the_served_model_is_refitted_on_every_row_by_default() -> None:
    dataset = read_csv(TINY_CSV)
    _, holdout, _, _ = split_holdout(dataset.texts, dataset.labels, 0.2, SPLIT_SEED)
    refitted = fit_model(dataset)
    kept = fit_model(dataset, refit=False)
    # Words only the hold-out has: the refitted model knows them, the other cannot.
    only_in_holdout = {w for t in holdout for w in t.lower().split()} - _words(kept.pipeline)
    assert only_in_holdout, "the tiny fixture's hold-out has words of its own"
    assert only_in_holdout & _words(refitted.pipeline)
    assert refitted.metrics["refit"] is True
    assert refitted.metrics["fitted_rows"] == len(dataset.texts)
    assert kept.metrics["refit"] is False
    assert kept.metrics["fitted_rows"] == kept.metrics["train_rows"] < len(dataset.texts)
    # The hold-out metrics describe the pipeline fitted without the hold-out.
    assert refitted.metrics["macro_f1"] == kept.metrics["macro_f1"]
    assert refitted.evaluated_pipeline is not refitted.pipeline
    assert refitted.metrics["fast_path_max_abs_diff"] <= 1e-9


def test_train_py_no_refit_keeps_the_evaluated_model(settings: Settings) -> None:
    done = run_train(settings, "--data", str(TINY_CSV), "--no-refit")
    assert done.returncode == 0, done.stderr
    assert "refitted on" not in done.stdout
    again = run_train(settings, "--data", str(TINY_CSV))
    assert again.returncode == 0, again.stderr
    assert "refit" in again.stderr and "refitted on" in again.stdout
    rows = {row.version: row.metrics for row in registry_rows(settings)}
    assert (rows["v1.0.0"]["refit"], rows["v1.0.1"]["refit"]) == (False, True)


def test_refit_must_be_a_boolean(api: Api) -> None:
    token = bearer(token_for(api.client, scope="predict train"))
    response = api.client.post("/training/", json={"refit": "no"}, headers=token)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["body", "refit"]


def test_a_refitted_version_is_compared_through_the_pipeline_it_was_measured_with(
    settings: Settings,
) -> None:
    assert run_train(settings, "--data", str(TINY_CSV)).returncode == 0
    again = run_train(settings, "--data", str(TINY_CSV))
    assert again.returncode == 0, again.stderr
    rows = {row.version: row for row in registry_rows(settings)}
    first = rows["v1.0.0"].metrics
    kept = settings.model_dir / first["holdout_artifact"]["file"]
    assert kept.name == "v1.0.0.holdout.joblib"
    assert hashlib.sha256(kept.read_bytes()).hexdigest() == first["holdout_artifact"]["sha256"]
    # The same recipe on the same rows: compared on the hold-out v1.0.0's measured
    # pipeline never saw, it is no worse, so it serves.
    second = rows["v1.0.1"].metrics
    assert second["active_version_compared"] == "v1.0.0"
    assert second["same_holdout_unseen_only"] is True
    assert second["new_macro_f1_same_holdout"] == second["active_macro_f1_same_holdout"]
    assert rows["v1.0.1"].is_active
