"""How fast the console's review queue lets a person decide items (issue 15: 30 a minute).

Starts a live server (uvicorn, the shipped model, SQLite by default or the
PostgreSQL server with --postgres), flags `--items` distinct product names from
data/products.csv for review (a threshold no score reaches), signs a reviewer in
with Debian's Chromium through Playwright and decides every item by keyboard as
a person would: `Enter` to accept the first suggestion, and every fifth item a
correction by `/`, typing a category and `Enter`. It times each decision from the
key press to the next item shown (the form post, the decision, the next item's
suggestions and explanation, the page).

A person at 30 items a minute has 2 s per item; what the console takes of those
2 s is what this prints. The person's own reading time is not measured here.

    .venv/bin/python benchmarks/review_throughput.py               # 120 items, SQLite
    .venv/bin/python benchmarks/review_throughput.py --postgres    # the same on PostgreSQL
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.support import bearer, request_token, start_server  # noqa: E402
from tests.support.databases import (  # noqa: E402
    BACKEND,
    drop_postgres_schema,
    new_postgres_schema,
)

REPO = Path(__file__).resolve().parents[1]
REVIEWER, SECRET = "bench-reviewer", "bench-reviewer-secret-1"
MACHINE, MACHINE_SECRET = "bench-machine", "bench-machine-secret-1"
BUDGET_MS = 2000.0  # 30 items a minute


def names(count: int) -> list[str]:
    with (REPO / "data" / "products.csv").open(encoding="utf-8", newline="") as handle:
        unique = list(dict.fromkeys(row["product_name"] for row in csv.DictReader(handle)))
    if len(unique) < count:
        raise SystemExit(f"data/products.csv has only {len(unique)} distinct names")
    # Spread over the file, not its first category only.
    step = len(unique) // count
    return [unique[i * step] for i in range(count)]


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=120, help="items to flag and decide")
    parser.add_argument("--postgres", action="store_true", help="serve from PostgreSQL")
    args = parser.parse_args(argv)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("Chromium not installed: apt-get install chromium")
    if args.postgres:
        BACKEND["name"] = "postgresql"
        schema, BACKEND["schema_url"] = new_postgres_schema()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            times = run(args, Path(tmp), chromium)
    finally:
        if args.postgres:
            drop_postgres_schema(schema)
    report(times, args)
    return 0


def run(args: argparse.Namespace, tmp: Path, chromium: str) -> list[float]:
    print("training the shipped model and starting the server", flush=True)
    process, server = start_server(tmp, train_first=True)
    try:
        for client_id, secret, scopes in (
            (REVIEWER, SECRET, "review"),
            (MACHINE, MACHINE_SECRET, "predict"),
        ):
            added = server.cli("add", client_id, client_id, secret, "--scopes", scopes)
            assert added.returncode == 0, added.stderr
        flagged = names(args.items)
        with httpx.Client(base_url=server.url, timeout=60) as http:
            token = request_token(http, MACHINE, MACHINE_SECRET).json()["access_token"]
            for name in flagged:
                body = {"product_name": name, "min_score": 1}
                answer = http.post("/predict/", json=body, headers=bearer(token))
                assert answer.json()["needs_review"], answer.text
        print(f"deciding {len(flagged)} flagged predictions by keyboard", flush=True)
        return decide_all(chromium, server.url, len(flagged))
    finally:
        process.terminate()
        process.wait(timeout=15)


def decide_all(chromium: str, url: str, expected: int) -> list[float]:
    times: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(f"{url}/console/sign-in")
        page.get_by_label("Client id").fill(REVIEWER)
        page.get_by_label("Secret").fill(SECRET)
        page.get_by_role("button", name="Sign in").click()
        deadline = time.monotonic() + 60
        page.goto(f"{url}/console/review")
        # The log writer flushes every 200 ms: reload (bounded) until all are queued.
        while page.get_by_test_id("remaining").inner_text() != str(expected):
            assert time.monotonic() < deadline, "the flagged predictions never reached the queue"
            time.sleep(0.5)
            page.reload()
        category = page.locator("#categories option").first.get_attribute("value") or ""
        step = 0
        # Until the queue is empty: near-duplicate names are decided together.
        while page.get_by_test_id("empty").count() == 0:
            page.wait_for_selector("html[data-keys=on]", state="attached")
            shown = page.get_by_test_id("name").inner_text()
            started = time.perf_counter()
            if step % 5 == 4:
                page.keyboard.press("/")
                page.keyboard.type(category)
                page.keyboard.press("Escape")
                page.keyboard.press("Enter")
            else:
                page.keyboard.press("Enter")
            page.wait_for_function(
                """([before, done]) => {
                    const decided = document.querySelector('[data-testid="decided"]');
                    return decided && decided.textContent.trim() === String(done);
                }""",
                arg=[shown, step + 1],
            )
            times.append((time.perf_counter() - started) * 1000)
            step += 1
        browser.close()
    return times


def report(times: list[float], args: argparse.Namespace) -> None:
    items = len(times)
    total_s = sum(times) / 1000
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(
        f"\n{items} items decided by keyboard in {total_s:.1f} s of console time "
        f"({backend}, {os.cpu_count()} cores, one uvicorn worker)"
    )
    print("| per decision | p50 ms | p95 ms | max ms | items/min at machine speed |")
    print("|---|---:|---:|---:|---:|")
    print(
        f"| key press to the next item shown | {statistics.median(times):.0f} "
        f"| {pct(times, 95):.0f} | {max(times):.0f} | {60 * items / total_s:.0f} |"
    )
    share = pct(times, 95) / BUDGET_MS
    print(
        f"\nAt 30 items a minute a person has {BUDGET_MS:.0f} ms per item; the console "
        f"takes {share:.0%} of it at p95, leaving {BUDGET_MS - pct(times, 95):.0f} ms to read."
    )


if __name__ == "__main__":
    raise SystemExit(main())
