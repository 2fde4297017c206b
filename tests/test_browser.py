"""The API docs as a person uses them: self-hosted Swagger UI and ReDoc, no CDN.

The browser test drives Debian's Chromium through Playwright against a live server
and aborts every request that leaves it, so a page that still needs the internet
fails here instead of showing a blank page on an offline network.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Locator,
    Page,
    Request,
    Response,
    Route,
    expect,
    sync_playwright,
)

from tests.support import REPO_ROOT, LiveServer, bearer, request_token, start_server

ARTIFACTS = REPO_ROOT / "test-artifacts"
BROWSER_CLIENT_ID = "browser-client"
BROWSER_CLIENT_SECRET = "browser-secret-123"
PRODUCT = '{"product_name": "susu ultra coklat 250ml"}'
# Swagger UI ids its OAuth2 inputs after the OpenAPI security scheme's name and flow.
SCHEME = "OAuth2ClientCredentials"
FLOW = "clientCredentials"
# Generous: the first paint parses ~3 MB of JavaScript on a 2-core CI machine.
UI_TIMEOUT_MS = 30_000

ASSET_REF = re.compile(r'(?:src|href)="([^"]+)"')
# ReDoc's sidebar asks for this logo whatever its options; the docs' CSP refuses it.
REDOCLY_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


# --- fast: the HTML itself --------------------------------------------------------------------


@pytest.mark.parametrize("page_url", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets(client: TestClient, page_url: str) -> None:
    response = client.get(page_url)
    assert response.status_code == 200
    # The browser then refuses whatever the bundled scripts would fetch from elsewhere.
    assert response.headers["content-security-policy"].startswith("default-src 'self' ")
    html = response.text
    assert "http://" not in html and "https://" not in html, html
    assets = ASSET_REF.findall(html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/static/"), asset
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert served.content, asset


def test_swagger_ui_keeps_the_oauth2_settings(client: TestClient) -> None:
    html = client.get("/docs").text
    assert "url: '/openapi.json'" in html
    assert "oauth2RedirectUrl: window.location.origin + '/docs/oauth2-redirect'" in html
    assert 'ui.initOAuth({"usePkceWithAuthorizationCodeGrant": false})' in html
    # No badge fetched from validator.swagger.io.
    assert '"validatorUrl": null' in html
    assert client.get("/docs/oauth2-redirect").status_code == 200


def test_docs_routes_stay_out_of_the_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc", "/static"))]


@pytest.mark.parametrize(
    ("asset", "content_type"),
    [
        ("/static/swagger-ui/swagger-ui-bundle.js", "javascript"),
        ("/static/swagger-ui/swagger-ui.css", "text/css"),
        ("/static/swagger-ui/favicon-32x32.png", "image/png"),
        ("/static/swagger-ui/oauth2-redirect.html", "text/html"),
        ("/static/redoc/redoc.standalone.js", "javascript"),
    ],
)
def test_static_assets_are_served(client: TestClient, asset: str, content_type: str) -> None:
    response = client.get(asset)
    assert response.status_code == 200
    assert content_type in response.headers["content-type"]


def test_licenses_ship_beside_the_assets() -> None:
    static = REPO_ROOT / "app" / "static"
    for folder in ("swagger-ui", "redoc"):
        assert (static / folder / "LICENSE").stat().st_size > 0, folder


# --- slow: a real browser on a live server ----------------------------------------------------


@dataclass
class Traffic:
    """What the page asked for: outside requests (all aborted) and local failures."""

    origin: str
    blocked: list[str] = field(default_factory=list)
    refused_by_csp: list[str] = field(default_factory=list)
    local_failures: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)

    def route(self, route: Route) -> None:
        url = route.request.url
        if _origin(url) == self.origin:
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def response(self, response: Response) -> None:
        if _origin(response.url) == self.origin and response.status >= 400:
            self.local_failures.append(f"{response.status} {response.url}")

    def request_failed(self, request: Request) -> None:
        if _origin(request.url) == self.origin:
            self.local_failures.append(f"failed {request.url}: {request.failure}")

    def console(self, message: ConsoleMessage) -> None:
        # Chromium reports a CSP refusal only on the console; it never reaches the network.
        if message.type == "error" and "Content Security Policy" in message.text:
            self.refused_by_csp.append(message.text)

    def assert_self_contained(self, *, refusable: tuple[str, ...] = ()) -> None:
        assert self.blocked == [], "the page tried to reach outside the server"
        unexpected = [
            text for text in self.refused_by_csp if not any(url in text for url in refusable)
        ]
        assert unexpected == [], "the page needs something from elsewhere"
        assert self.local_failures == []
        assert self.page_errors == []


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Chromium not installed: apt-get install chromium")
    return path


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Debian's build, not Playwright's download: this machine reaches no browser CDN.
    executable = chromium_path()
    expect.set_options(timeout=UI_TIMEOUT_MS)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture(scope="module")
def docs_server(
    browser: Browser, database_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    # Depends on the browser so that no server starts where Chromium is missing, and on
    # the backend so that each pass of the suite gets its own server.
    tmp = tmp_path_factory.mktemp("browser")
    process, server = start_server(tmp, train_first=True)
    try:
        added = server.cli("add", "Browser", BROWSER_CLIENT_ID, BROWSER_CLIENT_SECRET)
        assert added.returncode == 0, added.stderr
        yield server
    finally:
        process.terminate()
        process.wait(timeout=15)


@pytest.fixture
def offline_page(browser: Browser, docs_server: LiveServer) -> Iterator[tuple[Page, Traffic]]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    traffic = Traffic(origin=_origin(docs_server.url))
    # On the context, so that popups and workers are held to the same rule.
    context.route("**/*", traffic.route)
    page = context.new_page()
    page.on("response", traffic.response)
    page.on("requestfailed", traffic.request_failed)
    page.on("pageerror", lambda error: traffic.page_errors.append(str(error)))
    page.on("console", traffic.console)
    try:
        yield page, traffic
    finally:
        context.close()


def screenshot(target: Page | Locator, name: str) -> Path:
    """Save what a person would look at; whole pages are too tall to read."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    target.screenshot(path=str(path))
    return path


@pytest.mark.e2e
def test_swagger_ui_authorizes_and_predicts_offline(
    offline_page: tuple[Page, Traffic], docs_server: LiveServer
) -> None:
    page, traffic = offline_page
    page.goto(f"{docs_server.url}/docs")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Garoupa")

    page.locator(".auth-wrapper button.authorize").click()
    dialog = page.locator(".dialog-ux .modal-ux")
    expect(dialog).to_be_visible()
    dialog.locator(f"#client_id_{FLOW}").fill(BROWSER_CLIENT_ID)
    dialog.locator(f"#client_secret_{FLOW}").fill(BROWSER_CLIENT_SECRET)
    # The checkbox is drawn by its label; the CLI's client may use predict and train only.
    scope = dialog.locator(f"#predict-{FLOW}-checkbox-{SCHEME}")
    dialog.locator(f"label[for='predict-{FLOW}-checkbox-{SCHEME}']").click()
    expect(scope).to_be_checked()
    dialog.get_by_role("button", name="Apply given OAuth2 credentials").click()
    # Swagger UI swaps Authorize for Logout once /auth/token answered with a token.
    expect(dialog.get_by_role("button", name="Remove authorization")).to_be_visible()
    expect(dialog.locator(".errors")).to_have_count(0)
    screenshot(page, "swagger-ui-authorized")
    dialog.get_by_role("button", name="Close").click()
    expect(dialog).to_be_hidden()

    operation = page.locator(".opblock-post").filter(
        has=page.locator(".opblock-summary-path[data-path='/predict/']")
    )
    operation.locator(".opblock-summary").first.click()
    operation.locator("button.try-out__btn").click()
    body = operation.locator("textarea.body-param__text")
    body.fill(PRODUCT)
    operation.locator("button.execute").click()

    # The token from the Authorize dialog rides along: without it /predict/ answers 401.
    expect(operation.locator(".curl-command")).to_contain_text("Authorization: Bearer ")
    live = operation.locator(".live-responses-table")
    expect(live.locator("tbody .response-col_status")).to_have_text("200")
    expect(live.locator("tbody .response-col_description")).to_contain_text("Susu")
    screenshot(operation, "swagger-ui-predict")
    traffic.assert_self_contained()


@pytest.mark.e2e
def test_redoc_renders_offline(offline_page: tuple[Page, Traffic], docs_server: LiveServer) -> None:
    page, traffic = offline_page
    page.goto(f"{docs_server.url}/redoc")
    expect(page.get_by_role("heading", name=re.compile(r"^Garoupa"))).to_be_visible()
    expect(page.locator("redoc")).to_contain_text("susu ultra coklat 250ml")
    screenshot(page, "redoc")
    traffic.assert_self_contained(refusable=(REDOCLY_LOGO,))


# --- the console (people) ----------------------------------------------------------------

CONSOLE_ID = "console-admin"
CONSOLE_SECRET = "console-secret-123"
CONSOLE_NAMES = ("susu ultra coklat 250ml", "sabun mandi cair 400ml", "kopi bubuk 200g")


@pytest.fixture(scope="module")
def console_person(docs_server: LiveServer) -> str:
    added = docs_server.cli("add", "Console admin", CONSOLE_ID, CONSOLE_SECRET, "--scopes", "admin")
    assert added.returncode == 0, added.stderr
    return CONSOLE_ID


# axe-core, vendored for the tests only (tests/vendor/axe-core: version and licence there).
AXE_SCRIPT = REPO_ROOT / "tests" / "vendor" / "axe-core" / "axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.map(n => n.target.join(" "))}));
}"""


def serious_accessibility_violations(page: Page) -> list[dict[str, object]]:
    """What axe-core finds serious or critical on the page as it is now."""
    # Evaluated through the DevTools protocol, so the page's CSP (no script) allows it.
    page.evaluate(AXE_SCRIPT.read_text(encoding="utf-8"))
    found: list[dict[str, object]] = page.evaluate(RUN_AXE)
    return [v for v in found if v["impact"] in ("serious", "critical")]


def _shown_total(page: Page) -> int:
    return int(page.get_by_test_id("total").inner_text().replace(",", ""))


@pytest.mark.e2e
def test_console_signs_in_shows_the_traffic_at_both_widths_and_signs_out_offline(
    offline_page: tuple[Page, Traffic], docs_server: LiveServer, console_person: str
) -> None:
    page, traffic = offline_page
    # Traffic from a machine client, as the overview should then show it.
    with httpx.Client(base_url=docs_server.url, timeout=30) as http:
        issued = request_token(http, BROWSER_CLIENT_ID, BROWSER_CLIENT_SECRET)
        assert issued.status_code == 200, issued.text
        headers = bearer(issued.json()["access_token"])
        for name in CONSOLE_NAMES:
            answered = http.post("/predict/", json={"product_name": name}, headers=headers)
            assert answered.status_code == 200, answered.text

    page.goto(f"{docs_server.url}/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    assert serious_accessibility_violations(page) == []
    screenshot(page, "console-sign-in-1280")
    page.get_by_label("Client id").fill(console_person)
    page.get_by_label("Secret").fill(CONSOLE_SECRET)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()

    # The log writer flushes at least every 200 ms: reload (bounded) until it has.
    deadline = time.monotonic() + 30
    page.goto(f"{docs_server.url}/console?range=hour")
    while _shown_total(page) < len(CONSOLE_NAMES):
        assert time.monotonic() < deadline, "the predictions never reached the overview"
        time.sleep(0.5)
        page.reload()
    expect(page.get_by_test_id("per-client")).to_contain_text(BROWSER_CLIENT_ID)
    expect(page.get_by_test_id("per-category")).to_contain_text("Susu")
    screenshot(page, "console-overview-1280")
    assert serious_accessibility_violations(page) == []

    page.set_viewport_size({"width": 390, "height": 844})
    page.reload()
    # Nothing wider than a phone: tables wrap or scroll inside their cards.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "console-overview-390")
    assert serious_accessibility_violations(page) == []

    # The admin pages, by the keyboard-reachable navigation, at both widths.
    for width, height in ((390, 844), (1280, 1000)):
        page.set_viewport_size({"width": width, "height": height})
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Clients").click()
        expect(page.get_by_test_id("clients")).to_contain_text(BROWSER_CLIENT_ID)
        assert serious_accessibility_violations(page) == []
        screenshot(page, f"console-clients-{width}")
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Audit").click()
        expect(page.get_by_role("heading", name="Audit trail")).to_be_visible()
        assert serious_accessibility_violations(page) == []
        screenshot(page, f"console-audit-{width}")
        page.get_by_role("navigation", name="Console").get_by_role("link", name="Models").click()
        page.get_by_test_id("versions").get_by_role("link").first.click()
        expect(page.get_by_test_id("per-class")).to_be_visible()
        assert serious_accessibility_violations(page) == []
        screenshot(page, f"console-model-{width}")

    page.set_viewport_size({"width": 390, "height": 844})
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    screenshot(page, "console-sign-in-390")
    page.goto(f"{docs_server.url}/console")
    expect(page).to_have_url(re.compile(r"/console/sign-in$"))
    traffic.assert_self_contained()


REVIEW_NAMES = ("teh celup melati 25 sachet", "minyak goreng 2 liter", "biskuit kelapa 300g")


@pytest.mark.e2e
def test_console_review_queue_by_keyboard_makes_feedback(
    offline_page: tuple[Page, Traffic], docs_server: LiveServer, console_person: str
) -> None:
    page, traffic = offline_page
    with httpx.Client(base_url=docs_server.url, timeout=30) as http:
        issued = request_token(http, BROWSER_CLIENT_ID, BROWSER_CLIENT_SECRET)
        headers = bearer(issued.json()["access_token"])
        for name in REVIEW_NAMES:
            # A threshold no score reaches: every one is flagged for review.
            body = {"product_name": name, "min_score": 1}
            assert http.post("/predict/", json=body, headers=headers).json()["needs_review"]

    page.goto(f"{docs_server.url}/console/sign-in")
    page.get_by_label("Client id").fill(console_person)
    page.get_by_label("Secret").fill(CONSOLE_SECRET)
    page.get_by_role("button", name="Sign in").click()
    deadline = time.monotonic() + 30
    page.goto(f"{docs_server.url}/console/review")
    while not page.get_by_test_id("name").count():
        assert time.monotonic() < deadline, "the flagged predictions never reached the queue"
        time.sleep(0.5)
        page.reload()
    assert serious_accessibility_violations(page) == []
    screenshot(page, "console-review-1280")

    decided = []
    for step in range(3):
        # The keys work once review.js has run (deferred, after the HTML is parsed).
        expect(page.locator("html[data-keys=on]")).to_have_count(1)
        name = page.get_by_test_id("name").inner_text()
        decided.append(name)
        if step == 1:
            # "/" jumps to the search; a category from the list, then Enter.
            page.keyboard.press("/")
            category = page.locator("#categories option").first.get_attribute("value")
            assert category
            page.keyboard.type(category)
            # Closes the list of matching categories Chromium opens under the field.
            page.keyboard.press("Escape")
            expect(page.locator("#category")).to_be_focused()
            expect(page.locator("#category")).to_have_value(category)
            page.keyboard.press("Enter")
        else:
            # A number picks that suggestion; Enter accepts the first.
            page.keyboard.press("1" if step == 0 else "Enter")
        expect(page.get_by_test_id("decided")).to_have_text(str(step + 1))
    assert sorted(decided) == sorted(REVIEW_NAMES)
    page.set_viewport_size({"width": 390, "height": 844})
    assert serious_accessibility_violations(page) == []
    screenshot(page, "console-review-390")

    with httpx.Client(base_url=docs_server.url, timeout=30) as http:
        issued = request_token(http, BROWSER_CLIENT_ID, BROWSER_CLIENT_SECRET)
        listed = http.get(
            "/feedback/", params={"limit": 100}, headers=bearer(issued.json()["access_token"])
        )
    assert listed.status_code == 200, listed.text
    mine = {
        item["product_name"]
        for item in listed.json()["items"]
        if item["client_id"] == console_person and item["status"] == "accepted"
    }
    assert mine == set(REVIEW_NAMES)
    traffic.assert_self_contained()


REVIEWER_ID = "console-reviewer"
ELSEWHERE = "http://elsewhere.example"


def _page_with_a_site_elsewhere(
    browser: Browser, docs_server: LiveServer, forms: str
) -> tuple[BrowserContext, Page, Traffic]:
    """A page of this server, and `forms` served as another site's page at ELSEWHERE
    (every other origin still aborted)."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(UI_TIMEOUT_MS)
    traffic = Traffic(origin=_origin(docs_server.url))

    def route(route: Route) -> None:
        if _origin(route.request.url) == ELSEWHERE and route.request.method == "GET":
            html = f"<!doctype html><title>Elsewhere</title><main>{forms}</main>"
            route.fulfill(status=200, content_type="text/html", body=html)
        else:
            traffic.route(route)

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda error: traffic.page_errors.append(str(error)))
    return context, page, traffic


def _sign_in(page: Page, url: str, client_id: str) -> None:
    page.goto(f"{url}/console/sign-in")
    page.get_by_label("Client id").fill(client_id)
    page.get_by_label("Secret").fill(CONSOLE_SECRET)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()


@pytest.mark.e2e
def test_console_keeps_a_reviewer_out_of_admin_pages_and_routes(
    browser: Browser, docs_server: LiveServer
) -> None:
    added = docs_server.cli("add", "Reviewer", REVIEWER_ID, CONSOLE_SECRET, "--scopes", "review")
    assert added.returncode == 0, added.stderr
    context, page, traffic = _page_with_a_site_elsewhere(browser, docs_server, "")
    try:
        _sign_in(page, docs_server.url, REVIEWER_ID)
        nav = page.get_by_role("navigation", name="Console")
        expect(nav.get_by_role("link", name="Review")).to_be_visible()
        expect(nav.get_by_role("link", name="Clients")).to_have_count(0)
        expect(nav.get_by_role("link", name="Audit")).to_have_count(0)
        for path in ("/console/clients", "/console/audit"):
            answered = page.goto(docs_server.url + path)
            assert answered is not None and answered.status == 403
            expect(page.get_by_role("heading", name="Admins only")).to_be_visible()
        _both_widths(page, "console-refused")
        # Nor do the admin routes answer the reviewer's own bearer token.
        with httpx.Client(base_url=docs_server.url, timeout=30) as http:
            token = request_token(http, REVIEWER_ID, CONSOLE_SECRET).json()["access_token"]
        for path in ("/admin/clients", "/admin/audit", "/admin/stats"):
            answer = page.request.get(docs_server.url + path, headers=bearer(token))
            assert answer.status == 403 and answer.json()["error"] == "insufficient_scope"
        assert traffic.blocked == [] and traffic.page_errors == []
    finally:
        context.close()


@pytest.mark.e2e
def test_console_refuses_forms_posted_from_another_site(
    browser: Browser, docs_server: LiveServer, console_person: str
) -> None:
    url = docs_server.url
    forms = (
        f'<form method="post" action="{url}/console/clients/{BROWSER_CLIENT_ID}/active">'
        '<input type="hidden" name="active" value="false">'
        '<input type="hidden" name="csrf_token" value="guessed">'
        "<button>Win a prize</button></form>"
        f'<form method="post" action="{url}/console/sign-in">'
        f'<input type="hidden" name="client_id" value="{console_person}">'
        f'<input type="hidden" name="client_secret" value="{CONSOLE_SECRET}">'
        "<button>Sign in for me</button></form>"
    )
    context, page, traffic = _page_with_a_site_elsewhere(browser, docs_server, forms)
    try:
        _sign_in(page, url, console_person)
        # Signed in as an admin, the person visits another site that posts a form to
        # deactivate a client: the strict cookie stays home and the post is refused.
        page.goto(f"{ELSEWHERE}/")
        page.get_by_role("button", name="Win a prize").click()
        page.wait_for_load_state()
        assert page.url.startswith(url)
        with httpx.Client(base_url=url, timeout=30) as http:
            issued = request_token(http, BROWSER_CLIENT_ID, BROWSER_CLIENT_SECRET)
        assert issued.status_code == 200, "a cross-site form deactivated the client"
        # A sign-in posted from elsewhere (login CSRF) is refused outright.
        page.goto(f"{ELSEWHERE}/")
        with page.expect_response(f"{url}/console/sign-in") as posted:
            page.get_by_role("button", name="Sign in for me").click()
        assert posted.value.status == 403
        expect(page.get_by_text("was not sent from a page of this console")).to_be_visible()
        screenshot(page, "console-cross-site-refused-1280")
        # The person's own session was untouched by either.
        page.goto(f"{url}/console")
        expect(page.get_by_role("heading", name="Overview")).to_be_visible()
        assert traffic.blocked == [] and traffic.page_errors == []
    finally:
        context.close()


def _train_a_candidate(server: LiveServer) -> str:
    """A second version, trained on the small test catalog and not activated."""
    trained = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "train.py"),
            "--data",
            str(REPO_ROOT / "tests" / "data" / "tiny.csv"),
            "--algorithm",
            "sgd_log_loss",
            "--no-activate",
        ],
        env=server.env,
        cwd=server.log.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert trained.returncode == 0, trained.stderr
    found = re.search(r"Saved (v[\d.]+)", trained.stdout)
    assert found, trained.stdout
    return found.group(1)


def _active_version(url: str) -> str:
    with httpx.Client(base_url=url, timeout=30) as http:
        token = request_token(http, BROWSER_CLIENT_ID, BROWSER_CLIENT_SECRET).json()
        answer = http.get("/models/active", headers=bearer(token["access_token"]))
    assert answer.status_code == 200, answer.text
    return str(answer.json()["version"])


@pytest.mark.e2e
def test_console_activates_a_version_after_naming_the_change_and_rolls_back(
    offline_page: tuple[Page, Traffic], docs_server: LiveServer, console_person: str
) -> None:
    page, traffic = offline_page
    before = _active_version(docs_server.url)
    candidate = _train_a_candidate(docs_server)
    assert candidate != before
    _sign_in(page, docs_server.url, console_person)
    nav = page.get_by_role("navigation", name="Console")
    try:
        for version, replaced in ((candidate, before), (before, candidate)):
            nav.get_by_role("link", name="Models").click()
            page.get_by_test_id("versions").get_by_role("link", name=version, exact=True).click()
            page.get_by_role("link", name="Activate…").click()
            expect(page.get_by_role("heading", name=f"Activate {version}?")).to_be_visible()
            # The confirmation names what changes before anything does.
            expect(page.get_by_text(f"instead of {replaced}")).to_be_visible()
            assert _active_version(docs_server.url) == replaced
            if version == candidate:
                assert serious_accessibility_violations(page) == []
                screenshot(page, "console-activate-1280")
                page.set_viewport_size({"width": 390, "height": 844})
                screenshot(page, "console-activate-390")
                page.set_viewport_size({"width": 1280, "height": 1000})
            page.get_by_role("button", name=f"Activate {version}").click()
            # Every worker serves it within seconds (the registry's refresh): bounded wait.
            deadline = time.monotonic() + 30
            while _active_version(docs_server.url) != version:
                assert time.monotonic() < deadline, f"/models/active never became {version}"
                time.sleep(0.5)
    finally:
        if _active_version(docs_server.url) != before:
            # Leave the server as the other tests expect it, whatever happened above.
            with httpx.Client(base_url=docs_server.url, timeout=30) as http:
                issued = request_token(http, console_person, CONSOLE_SECRET).json()
                http.post(f"/models/{before}/activate", headers=bearer(issued["access_token"]))
    traffic.assert_self_contained()


DROP_FILE = """([name, text]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, {type: "text/csv"}));
  const zone = document.querySelector("[data-drop-zone]");
  for (const type of ["dragenter", "dragover", "drop"]) {
    zone.dispatchEvent(new DragEvent(type, {dataTransfer: data, bubbles: true, cancelable: true}));
  }
}"""


def _both_widths(page: Page, name: str) -> None:
    """Screenshots at 1280 and 390 px, each checked by axe, nothing wider than a phone."""
    for width, height in ((1280, 1000), (390, 844)):
        page.set_viewport_size({"width": width, "height": height})
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), width
        assert serious_accessibility_violations(page) == [], (name, width)
        screenshot(page, f"{name}-{width}")
    page.set_viewport_size({"width": 1280, "height": 1000})


@pytest.mark.e2e
def test_console_trains_on_a_dropped_csv_follows_the_job_and_compares_versions(
    offline_page: tuple[Page, Traffic], docs_server: LiveServer, console_person: str
) -> None:
    page, traffic = offline_page
    _sign_in(page, docs_server.url, console_person)
    nav = page.get_by_role("navigation", name="Console")
    nav.get_by_role("link", name="Training").click()
    expect(page.get_by_role("heading", name="Training", exact=True)).to_be_visible()
    _both_widths(page, "console-training")

    # Dropped on the page as a person drags it from their files.
    expect(page.locator("html[data-training=on]")).to_have_count(1)
    csv_text = (REPO_ROOT / "tests" / "data" / "tiny.csv").read_text(encoding="utf-8")
    page.evaluate(DROP_FILE, ["catalog.csv", csv_text])
    expect(page.locator("#drop-note")).to_contain_text("catalog.csv")
    page.get_by_role("button", name="Upload").click()
    rows = len(csv_text.strip().splitlines()) - 1
    expect(page.get_by_test_id("rows")).to_have_text(f"{rows:,}")
    _both_widths(page, "console-training-upload")

    # On the upload alone, kept inactive so the other tests keep their model.
    page.get_by_label("Algorithm").select_option("sgd_log_loss")
    page.get_by_label("The active version's training data").uncheck()
    page.get_by_label("Accepted feedback").uncheck()
    page.get_by_label("Serve the new version", exact=False).uncheck()
    page.get_by_role("button", name="Start training").click()
    # The page follows the job by itself and shows the scores when it ends.
    model_link = page.get_by_test_id("model-link")
    expect(model_link).to_be_visible(timeout=180_000)
    found = re.search(r"(v\d+\.\d+\.\d+)$", model_link.inner_text())
    assert found, model_link.inner_text()
    version = found.group(1)
    _both_widths(page, "console-training-job")

    nav.get_by_role("link", name="Models").click()
    page.get_by_label("Version A").select_option(_active_version(docs_server.url))
    page.get_by_label("Version B").select_option(version)
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(version)
    _both_widths(page, "console-compare")
    traffic.assert_self_contained()
