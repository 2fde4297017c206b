"""The console's models pages: versions and their hold-out metrics; activation (admin).

Everything shown comes from the metrics recorded with each version when it was
trained (app/ml/evaluation.py): per-category precision, recall and F1, the
confusion matrix, the reliability bins behind the ECE and the coverage-precision
curve with the version's review threshold; two versions side by side. Activation
goes through the same ModelRegistry and audit event as
`POST /models/{version}/activate`, after a confirmation that names what changes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from app.api.deps import AuditTrailDep, ModelRegistryDep, ShadowServiceDep
from app.api.routes.console import (
    ConsoleUserDep,
    form_field,
    message_page,
    page,
    redirect_to,
    refused,
    same_origin,
)
from app.core.errors import Conflict, NotFound
from app.db.models import ModelVersion
from app.services.console import ConsoleUser
from app.services.models import activate_audited
from app.services.shadow import ShadowService

router = APIRouter(prefix="/console", include_in_schema=False)

SORTS = ("category", "precision", "recall", "f1", "support")
# Beyond this many categories the heat map would be unreadable cells; the list of
# largest confusions still covers them.
HEATMAP_MAX_LABELS = 60
TOP_CONFUSIONS = 15
# Flips of a live comparison shown on a model's page (the API lists 50).
TOP_FLIPS = 10
# The comparison sorts by the second version's columns, or by how F1 changed.
COMPARE_SORTS = (*SORTS, "f1_diff")
# Categories per comparison page: thousands of rows would make a slow, unreadable page.
COMPARE_PAGE_SIZE = 100
_RELIABILITY_SIZE = 240


@router.get("/models", response_class=HTMLResponse)
async def models_page(
    request: Request, user: ConsoleUserDep, registry: ModelRegistryDep
) -> Response:
    """Every version, newest first, with its hold-out summary."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    rows = await run_in_threadpool(registry.list)
    versions = [_summary(row) for row in sorted(rows, key=lambda r: r.created_at, reverse=True)]
    return page(
        request,
        "models.html",
        user=user,
        title="Models",
        versions=versions,
        pair=_default_pair(versions),
    )


@router.get("/models/compare", response_class=HTMLResponse)
async def compare_page(
    request: Request,
    user: ConsoleUserDep,
    registry: ModelRegistryDep,
    a: Annotated[str, Query(max_length=64)] = "",
    b: Annotated[str, Query(max_length=64)] = "",
    sort: Annotated[str, Query(max_length=16)] = "f1_diff",
    order: Annotated[str, Query(max_length=16)] = "asc",
    page_no: Annotated[str, Query(alias="page", max_length=8)] = "1",
) -> Response:
    """Two versions side by side: headline scores and per-category scores with differences."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    if not a or not b:
        message = "Choose a version A and a version B to compare."
        return message_page(request, user, 400, "Choose two versions", message, "/console/models")
    rows: list[ModelVersion] = []
    for version in (a, b):
        try:
            rows.append(await run_in_threadpool(registry.get, version))
        except NotFound:
            return _missing(request, user, version)
    listed = await run_in_threadpool(registry.list)
    return page(
        request,
        "compare.html",
        user=user,
        title=f"Models {rows[0].version} and {rows[1].version}",
        versions=[row.version for row in sorted(listed, key=lambda r: r.created_at, reverse=True)],
        **_comparison(rows[0], rows[1], sort, order, page_no),
    )


@router.get("/models/{version}", response_class=HTMLResponse)
async def model_page(
    request: Request,
    version: str,
    user: ConsoleUserDep,
    registry: ModelRegistryDep,
    shadow: ShadowServiceDep,
    sort: Annotated[str, Query(max_length=16)] = "f1",
    order: Annotated[str, Query(max_length=16)] = "asc",
) -> Response:
    """One version: per-category metrics (sortable), confusions, the review curve, and
    its latest comparison on live traffic (shadow evaluation), if it had one."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    try:
        row = await run_in_threadpool(registry.get, version)
    except NotFound:
        return _missing(request, user, version)
    active = await run_in_threadpool(registry.active)
    live = await run_in_threadpool(_live_comparison, shadow, version)
    sort = sort if sort in SORTS else "f1"
    order = order if order in ("asc", "desc") else "asc"
    metrics: dict[str, Any] = row.metrics or {}
    return page(
        request,
        "model.html",
        user=user,
        title=f"Model {row.version}",
        model=_summary(row),
        per_class=_per_class(metrics, sort, order),
        sort=sort,
        order=order,
        sorts=SORTS,
        confusions=_confusions(metrics),
        heatmap=_heatmap(metrics),
        curve=_curve(metrics),
        reliability=_reliability(metrics),
        active_version=None if active is None else active.version,
        live=live,
    )


@router.get("/models/{version}/activate", response_class=HTMLResponse)
async def confirm_activation(
    request: Request, version: str, user: ConsoleUserDep, registry: ModelRegistryDep
) -> Response:
    """What activating `version` changes, and the form that does it (admin)."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    if not user.is_admin:
        return _admins_only(request, user)
    try:
        row = await run_in_threadpool(registry.get, version)
    except NotFound:
        return _missing(request, user, version)
    active = await run_in_threadpool(registry.active)
    return page(
        request,
        "activate.html",
        user=user,
        title=f"Activate {row.version}",
        model=_summary(row),
        active=None if active is None else _summary(active),
    )


@router.post("/models/{version}/activate", response_class=HTMLResponse)
async def activate(
    request: Request,
    version: str,
    user: ConsoleUserDep,
    registry: ModelRegistryDep,
    audit: AuditTrailDep,
) -> Response:
    """Make `version` the one every worker serves; audited as `model.activate`."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    if not user.is_admin:
        return _admins_only(request, user)
    if not same_origin(request):
        return refused(request)
    form = await request.form(max_files=0, max_fields=8)
    if not user.csrf_matches(form_field(form.get("csrf_token"))):
        return refused(request)

    try:
        await run_in_threadpool(
            lambda: activate_audited(registry, audit, version, actor=user.client_id)
        )
    except NotFound:
        return _missing(request, user, version)
    except Conflict as exc:
        back = f"/console/models/{version}"
        return message_page(request, user, 409, "Not activated", str(exc), back)
    return redirect_to(request, f"/console/models/{version}")


def _live_comparison(shadow: ShadowService, version: str) -> dict[str, Any] | None:
    try:
        run = shadow.latest(version)
    except NotFound:
        return None
    return shadow.report(run, max_flips=TOP_FLIPS)


def _summary(row: ModelVersion) -> dict[str, Any]:
    metrics: dict[str, Any] = row.metrics or {}
    review = metrics.get("review") or {}
    return {
        "version": row.version,
        "created_at": row.created_at,
        "activated_at": row.activated_at,
        "is_active": row.is_active,
        "algorithm": row.algorithm,
        "classes": len(row.classes or []),
        "data_rows": row.data_rows,
        "n_samples": metrics.get("n_samples"),
        "accuracy": metrics.get("accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "ece": metrics.get("ece"),
        "threshold": review.get("threshold"),
    }


def _per_class(metrics: dict[str, Any], sort: str, order: str) -> list[dict[str, Any]]:
    rows = [
        {"category": label, **values}
        for label, values in (metrics.get("per_class") or {}).items()
        if isinstance(values, dict)
    ]
    rows.sort(key=lambda r: (r.get(sort, 0), r["category"]), reverse=order == "desc")
    return rows


def _confusions(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The largest off-diagonal cells: which category is most often taken for which."""
    matrix = metrics.get("confusion_matrix") or {}
    labels: list[str] = matrix.get("labels") or []
    cells: list[list[int]] = matrix.get("matrix") or []
    pairs: list[dict[str, Any]] = [
        {"true": labels[i], "predicted": labels[j], "count": count, "of": sum(row)}
        for i, row in enumerate(cells)
        for j, count in enumerate(row)
        if i != j and count > 0
    ]
    pairs.sort(key=lambda p: (-p["count"], p["true"], p["predicted"]))
    return pairs[:TOP_CONFUSIONS]


def _heatmap(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """Cells of the confusion matrix, each row's shares as opacity, for an inline SVG."""
    matrix = metrics.get("confusion_matrix") or {}
    labels: list[str] = matrix.get("labels") or []
    cells: list[list[int]] = matrix.get("matrix") or []
    if not labels or len(labels) > HEATMAP_MAX_LABELS:
        return None
    size = 480 / len(labels)
    rects = []
    for i, row in enumerate(cells):
        total = sum(row) or 1
        for j, count in enumerate(row):
            if count:
                rects.append(
                    {
                        "x": round(j * size, 2),
                        "y": round(i * size, 2),
                        "size": round(size, 2),
                        "opacity": round(0.15 + 0.85 * count / total, 3),
                        "diagonal": i == j,
                        "label": f"{labels[i]} predicted as {labels[j]}: {count} of {total}",
                    }
                )
    return {"rects": rects, "labels": len(labels)}


def _curve(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The coverage-precision curve as an SVG polyline, with the review threshold."""
    review = metrics.get("review") or {}
    points: list[dict[str, Any]] = review.get("coverage_precision") or []
    if not points:
        return None
    width, height = 480, 240
    low = min(min(p["precision"] for p in points), 0.5)

    def xy(point: dict[str, Any]) -> tuple[float, float]:
        x = point["coverage"] * width
        y = height - (point["precision"] - low) / (1 - low) * height if low < 1 else 0.0
        return round(x, 2), round(y, 2)

    threshold = review.get("threshold")
    marked = None
    if threshold is not None:
        nearest = min(points, key=lambda p: abs(p["threshold"] - threshold))
        x, y = xy(nearest)
        marked = {"x": x, "y": y, **nearest}
    table = [p for p in points if round(p["threshold"] * 10, 6) == int(p["threshold"] * 10)]
    return {
        "width": width,
        "height": height,
        "low": low,
        "polyline": " ".join(f"{x},{y}" for x, y in map(xy, points)),
        "marked": marked,
        "threshold": threshold,
        "table": table,
    }


def _reliability(metrics: dict[str, Any]) -> dict[str, Any] | None:
    """The recorded confidence bins laid out for an inline SVG: accuracy against mean
    confidence, each bin a dot that grows with its count, and its gap to the diagonal."""
    bins = metrics.get("reliability")
    if not isinstance(bins, list) or not bins:
        # Versions trained before the bins were recorded have only the ECE.
        return None
    filled = [b for b in bins if isinstance(b, dict) and b.get("count")]
    size = _RELIABILITY_SIZE
    most = max((int(b["count"]) for b in filled), default=1)
    points = []
    for b in filled:
        points.append(
            {
                "x": round(b["confidence"] * size, 2),
                "y": round(size - b["accuracy"] * size, 2),
                # Where a perfectly calibrated bin would sit, to draw its gap.
                "diagonal_y": round(size - b["confidence"] * size, 2),
                "r": round(3 + 9 * math.sqrt(int(b["count"]) / most), 2),
                "label": f"{b['count']} names scored ({b['lo']:.2f}, {b['hi']:.2f}]: "
                f"mean confidence {b['confidence']:.3f}, right {b['accuracy']:.3f}",
            }
        )
    return {
        "size": size,
        "points": points,
        "table": filled,
        "bins": len(bins),
        "total": sum(int(b["count"]) for b in filled),
    }


def _default_pair(versions: Sequence[dict[str, Any]]) -> tuple[str, str] | None:
    """What the compare form starts with: the active version, and the newest other one."""
    if len(versions) < 2:
        return None
    active = next((v["version"] for v in versions if v["is_active"]), versions[1]["version"])
    other = next(v["version"] for v in versions if v["version"] != active)
    return active, other


def _headline(row: ModelVersion) -> dict[str, Any]:
    """`_summary` plus what the comparison also sets side by side."""
    metrics: dict[str, Any] = row.metrics or {}
    summary = _summary(row)
    coverage = None
    threshold = summary["threshold"]
    if threshold is not None:
        points = (metrics.get("review") or {}).get("coverage_precision") or []
        # Only an exact point: the threshold 1.0 (nothing reached 95 %) is off the curve.
        coverage = next(
            (p["coverage"] for p in points if abs(p["threshold"] - threshold) < 1e-9), None
        )
    return {
        **summary,
        "weighted_f1": metrics.get("weighted_f1"),
        "train_rows": metrics.get("train_rows"),
        "coverage": coverage,
        "params": row.best_params or row.params or {},
        "searched": row.best_params is not None,
    }


def _comparison(
    left: ModelVersion, right: ModelVersion, sort: str, order: str, page_no: str
) -> dict[str, Any]:
    """Everything compare.html shows: both headlines and one page of per-category rows."""
    sort = sort if sort in COMPARE_SORTS else "f1_diff"
    order = order if order in ("asc", "desc") else "asc"
    rows = _category_rows(left.metrics or {}, right.metrics or {}, sort, order)
    pages = max(1, math.ceil(len(rows) / COMPARE_PAGE_SIZE))
    number = int(page_no) if page_no.isascii() and page_no.isdigit() else 1
    number = min(max(number, 1), pages)
    start = (number - 1) * COMPARE_PAGE_SIZE
    a, b = _headline(left), _headline(right)
    differing = {
        key
        for key in set(a["params"]) | set(b["params"])
        if a["params"].get(key) != b["params"].get(key)
    }
    return {
        "a": a,
        "b": b,
        "same": left.version == right.version,
        "differing": differing,
        "categories": rows[start : start + COMPARE_PAGE_SIZE],
        "total": len(rows),
        "first": start + 1,
        "page_no": number,
        "pages": pages,
        "sort": sort,
        "order": order,
    }


def _category_rows(
    left: dict[str, Any], right: dict[str, Any], sort: str, order: str
) -> list[dict[str, Any]]:
    """Per category both versions' scores and B minus A; a category one version lacks
    has None on that side and sorts after the others."""
    a_scores = _scores_by_category(left)
    b_scores = _scores_by_category(right)
    rows: list[dict[str, Any]] = []
    for label in sorted(a_scores.keys() | b_scores.keys()):
        a, b = a_scores.get(label), b_scores.get(label)
        diff = None
        if a is not None and b is not None:
            diff = {k: b.get(k, 0.0) - a.get(k, 0.0) for k in ("precision", "recall", "f1")}
        rows.append({"category": label, "a": a, "b": b, "diff": diff})
    descending = order == "desc"
    if sort == "category":
        return sorted(rows, key=lambda r: r["category"], reverse=descending)

    def value(row: dict[str, Any]) -> float | None:
        side = row["diff"] if sort == "f1_diff" else row["b"]
        return None if side is None else side.get("f1" if sort == "f1_diff" else sort)

    known = [r for r in rows if value(r) is not None]
    known.sort(key=lambda r: (value(r), r["category"]), reverse=descending)
    return known + [r for r in rows if value(r) is None]


def _scores_by_category(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    per_class = metrics.get("per_class") or {}
    return {str(k): v for k, v in per_class.items() if isinstance(v, dict)}


def _missing(request: Request, user: ConsoleUser, version: str) -> Response:
    message = f"No model version is called {version!r}."
    return message_page(request, user, 404, "No such version", message, "/console/models")


def _admins_only(request: Request, user: ConsoleUser) -> Response:
    message = "Activating a version is for clients holding the admin scope."
    return message_page(request, user, 403, "Admins only", message, "/console/models")
