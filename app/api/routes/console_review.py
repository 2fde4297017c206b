"""The console's review queue page: one flagged prediction at a time, keyboard first.

The page works as plain forms; review.js (served from /static, the only script
the console's CSP allows) adds the keys: 1-5 pick a suggestion, `/` moves to
the category search, Enter sends it, `s` skips, `u` undoes the last decision.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from app.api.deps import FeedbackServiceDep, PredictionServiceDep, SessionDep
from app.api.routes.console import (
    ConsoleUserDep,
    form_field,
    message_page,
    page,
    redirect_to,
    refused,
    same_origin,
)
from app.core.errors import Conflict, GaroupaError, NotFound
from app.services.console import ConsoleUser
from app.services.feedback import UnknownCategory
from app.services.review_queue import QUEUE_DAYS, ReviewQueue

router = APIRouter(prefix="/console", include_in_schema=False)


def _queue(
    session: SessionDep, predictions: PredictionServiceDep, feedback: FeedbackServiceDep
) -> ReviewQueue:
    return ReviewQueue(session, predictions, feedback)


ReviewQueueDep = Annotated[ReviewQueue, Depends(_queue)]


@router.get("/review", response_class=HTMLResponse)
async def review_page(request: Request, user: ConsoleUserDep, queue: ReviewQueueDep) -> Response:
    """The next prediction to decide, its suggestions, and the reviewer's progress."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    item = await run_in_threadpool(queue.next)
    progress = await run_in_threadpool(queue.progress, user.client_id)
    categories = await run_in_threadpool(queue.categories) if item is not None else []
    return page(
        request,
        "review.html",
        user=user,
        title="Review",
        item=item,
        progress=progress,
        categories=categories,
        days=QUEUE_DAYS,
        scripts=["review.js"],
    )


@router.post("/review/undo", response_class=HTMLResponse)
async def undo(request: Request, user: ConsoleUserDep, queue: ReviewQueueDep) -> Response:
    """Return the reviewer's latest decision to the queue."""
    checked = await _checked(request, user)
    if checked is not None:
        return checked
    assert user is not None
    await run_in_threadpool(queue.undo_last, user.client_id)
    return redirect_to(request, "/console/review")


@router.post("/review/{prediction_id}", response_class=HTMLResponse)
async def decide(
    request: Request, prediction_id: int, user: ConsoleUserDep, queue: ReviewQueueDep
) -> Response:
    """Confirm, correct or skip one prediction (and its same-name duplicates)."""
    checked = await _checked(request, user)
    if checked is not None:
        return checked
    assert user is not None
    form = await request.form(max_files=0, max_fields=8)
    action = form_field(form.get("action"))
    category = form_field(form.get("category")).strip() or None
    try:
        await run_in_threadpool(
            lambda: queue.decide(
                prediction_id, reviewer=user.client_id, action=action, category=category
            )
        )
    except UnknownCategory:
        return _problem(request, user, 422, "That category is not one the service knows.")
    except NotFound as exc:
        return _problem(request, user, 404, str(exc))
    except GaroupaError as exc:
        return _problem(request, user, 409 if isinstance(exc, Conflict) else 422, str(exc))
    return redirect_to(request, "/console/review")


async def _checked(request: Request, user: ConsoleUser | None) -> Response | None:
    """The answer refusing a decision (no session, another site, no CSRF token), or None."""
    if user is None:
        return redirect_to(request, "/console/sign-in")
    if not same_origin(request):
        return refused(request)
    form = await request.form(max_files=0, max_fields=8)
    if not user.csrf_matches(form_field(form.get("csrf_token"))):
        return refused(request)
    return None


def _problem(request: Request, user: ConsoleUser, status: int, message: str) -> Response:
    return message_page(request, user, status, "Not decided", message, "/console/review")
