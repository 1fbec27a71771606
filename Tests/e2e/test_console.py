"""The console (console/, served by nginx under /console/) in a real browser: Debian's
Chromium driven by Playwright, headless, against one stack for the whole module.

An approver sees a request with its plan and approves it by keyboard, and the page follows
the operation to `succeeded` from the event feed without a reload; a requester and a viewer
see no button they may not use (and the API refuses anyway); a denial needs a reason in the
page and in the API; hostile names and reasons are shown as text under the console's
Content-Security-Policy; axe finds no serious or critical violation on any page; a deep link
opened before signing in is where sign-in lands. Screenshots of every page go to
.run/console-screenshots/, and the measurements (first useful paint and bytes of the
approvals page, the live-update delay's p95) to .run/console-screenshots/measurements.json."""

import json
import statistics
import time
import uuid
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import sync_playwright

from vpsgate_e2e import SHORT_WINDOWS, Client, http_request, new_key, reset_change_control, sim_requests

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".run" / "console-screenshots"
CSP = "default-src 'self'; frame-ancestors 'none'"
HOSTILE = "<img src=x onerror=alert(1)></script>"
HOSTILE_KEY = "</script><img/src=x/onerror=alert(1)>"
TEMPLATE = 1130
LIVE_VPS = list(range(1301, 1311))


@pytest.fixture(scope="module")
def stack(stack_factory):
    stack = stack_factory("console", destroy_approvals=None, extra_env=SHORT_WINDOWS)
    for vps in [1201] + LIVE_VPS:
        stack.sim("POST", "/__sim/vms", {"id": vps})
    return stack


@pytest.fixture(scope="module")
def people(stack):
    """ana: admin (requests destructive changes); ben: approver; vera: viewer. (Principal
    names are letters, digits and `._@:=,/+-` only: markup comes in keys and reasons.)"""
    names = {"ana": "admin", "ben": "approver", "vera": "viewer"}
    tokens = {}
    for name, role in names.items():
        stack.grant(name, "*", role)
        tokens[name] = stack.create_token(name)
    return {name: (Client(stack, token), token) for name, token in tokens.items()}


@pytest.fixture(scope="module")
def browser():
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def measurements():
    found = {}
    yield found
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "measurements.json").write_text(json.dumps(found, indent=2) + "\n")
    print("\nconsole measurements:", json.dumps(found))


@pytest.fixture(autouse=True)
def clean(stack):
    reset_change_control(stack)
    yield


class Tab:
    """One browser context and page, recording what must never happen: a dialog, a console
    error, an uncaught exception, a console response without the CSP."""

    def __init__(self, browser, stack):
        self.stack = stack
        self.context = browser.new_context(base_url=stack.url, ignore_https_errors=True, viewport={"width": 1200, "height": 800})
        self.page = self.context.new_page()
        self.dialogs, self.errors, self.without_csp, self.requests = [], [], [], []
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.page.on("console", lambda message: self.errors.append(message.text) if message.type == "error" else None)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append((request.method, request.url)))
        self.page.on("response", self._response)

    def _response(self, response):
        path = response.url.removeprefix(self.stack.url)
        if path.startswith("/console") and response.headers.get("content-security-policy") != CSP:
            self.without_csp.append(path)

    def sign_in(self, token, at="/console/"):
        self.page.goto(at)
        self.page.wait_for_url("**/console/signin")
        self.page.fill("#token", token)
        self.page.press("#token", "Enter")
        self.page.wait_for_function(
            "() => document.documentElement.dataset.page === location.pathname && location.pathname !== '/console/signin'")

    def shot(self, name):
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def axe(self, name):
        results = Axe().run(self.page)
        bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
        assert bad == [], f"axe on {name}: {bad}"

    def clean(self):
        assert self.dialogs == [], self.dialogs
        assert self.errors == [], self.errors
        assert self.without_csp == [], self.without_csp

    def close(self):
        self.context.close()


@pytest.fixture
def tabs(browser, stack):
    opened = []

    def tab():
        opened.append(Tab(browser, stack))
        return opened[-1]

    yield tab
    for tab in opened:
        tab.close()


def recreate(client, vps, key=None):
    status, headers, operation = client.json("POST", f"/v1/vps/{vps}/recreate", key=key or new_key(),
                                             body={"template_id": TEMPLATE, "password": "Matrix7Password-Ok", "confirm": vps})
    assert status == 202 and operation["state"] == "awaiting_approval", operation
    return operation


def recreate_posts(stack, vps):
    return [r for r in sim_requests(stack, "POST") if r["path"].endswith(f"/{vps}/recreate")]


def tab_to(page, element_id, limit=40):
    """Presses Tab until the element with `element_id` has the focus: it is reachable by keyboard."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} is not reachable with Tab")


# MARK: - 1. Approve and follow

def test_an_approver_sees_the_plan_approves_by_keyboard_and_follows_it_live(stack, people, tabs, measurements):
    operation = recreate(people["ana"][0], 1003)
    tab = tabs()
    page = tab.page
    tab.sign_in(people["ben"][1])
    page.wait_for_selector(f"#approvals tr[data-operation='{operation['id']}']")

    # The approvals page opened afresh with no cache: first useful paint (the table drawn) and bytes.
    tab.context.new_cdp_session(page).send("Network.setCacheDisabled", {"cacheDisabled": True})
    page.goto("/console/approvals")
    page.wait_for_selector(f"#approvals tr[data-operation='{operation['id']}']")
    drawn = page.evaluate("performance.getEntriesByName('vpsgate:approvals-drawn')[0].startTime")
    transferred = page.evaluate("""performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource'))
        .reduce((sum, entry) => sum + entry.transferSize, 0)""")
    measurements["approvals_first_useful_paint_ms"] = round(drawn, 1)
    measurements["approvals_bytes_transferred"] = transferred
    row = page.locator(f"#approvals tr[data-operation='{operation['id']}']")
    assert "vps.recreate" in row.inner_text() and "ana" in row.inner_text() and "0 of 1" in row.inner_text()
    tab.shot("approvals")
    tab.axe("approvals")

    row.locator("a").click()
    page.wait_for_selector("#approve")
    text = page.inner_text("main")
    assert f'"template_id": {TEMPLATE}' in text, text
    assert "Matrix7Password-Ok" not in text, "the password is redacted"
    assert page.locator("#effects li").count() >= 1
    assert f"/{1003}/recreate" in text
    tab.shot("approval")
    tab.axe("approval")

    page.evaluate("window.__sameDocument = true")
    tab_to(page, "approve")
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/console/operations/{operation['id']}")
    page.wait_for_selector("#operation-state [data-state='succeeded']", timeout=30_000)
    assert page.evaluate("window.__sameDocument === true"), "followed without a reload"
    assert "approve" in page.inner_text("#timeline")
    assert len(recreate_posts(stack, 1003)) == 1
    tab.shot("operation")
    tab.axe("operation")
    tab.clean()


# MARK: - 2. Buttons a principal may not use

def test_the_requester_and_a_viewer_see_no_approve_button_and_the_api_refuses(stack, people, tabs):
    operation = recreate(people["ana"][0], 1201)
    path = f"/console/approvals/{operation['id']}"
    requester = tabs()
    requester.sign_in(people["ana"][1], at=path)
    requester.page.wait_for_selector("#cancel")
    assert requester.page.locator("#approve, #deny").count() == 0
    status = requester.page.evaluate("""async (id) => (await fetch(`/v1/operations/${id}/approve`, {method: 'POST',
        headers: {Authorization: `Bearer ${sessionStorage.getItem('vpsgate.token')}`}})).status""", operation["id"])
    assert status == 403
    requester.shot("approval-requester")

    viewer = tabs()
    viewer.sign_in(people["vera"][1], at=path)
    viewer.page.wait_for_selector("h1:has-text('Approval request')")
    assert viewer.page.locator("#approve, #deny, #cancel").count() == 0
    viewer.shot("approval-viewer")
    viewer.axe("approval (viewer)")

    requester.page.click("#cancel")
    requester.page.wait_for_selector("#operation-state [data-state='cancelled']")
    assert recreate_posts(stack, 1201) == [], "nothing is sent"
    requester.errors = [e for e in requester.errors if "403" not in e]  # the refused fetch, made on purpose
    requester.clean()
    viewer.clean()


# MARK: - 3. A denial needs a reason

def test_deny_without_a_reason_is_refused_by_the_page_and_by_the_api(stack, people, tabs):
    operation = recreate(people["ana"][0], 1201)
    status, _, problem = people["ben"][0].json("POST", f"/v1/operations/{operation['id']}/deny")
    assert status == 422 and "reason" in problem["errors"]
    tab = tabs()
    tab.sign_in(people["ben"][1], at=f"/console/approvals/{operation['id']}")
    tab.page.wait_for_selector("#deny")
    tab.page.click("#deny")
    assert "reason is required" in tab.page.inner_text("#decision-message")
    assert not [url for method, url in tab.requests if method == "POST"], "the page sent nothing"
    tab.page.fill("#deny-reason", HOSTILE)
    tab.page.click("#deny")
    tab.page.wait_for_selector("#operation-state [data-state='cancelled']")
    assert HOSTILE in tab.page.inner_text("#timeline"), "the reason, as text"
    assert recreate_posts(stack, 1201) == []
    tab.shot("operation-denied")
    tab.clean()


# MARK: - 4. Hostile values are text

def test_hostile_keys_and_reasons_are_shown_as_text_under_the_csp(stack, people, tabs):
    operation = recreate(people["ana"][0], 1201, key=HOSTILE_KEY)
    tab = tabs()
    tab.sign_in(people["ben"][1])
    page = tab.page
    page.wait_for_selector(f"#approvals tr[data-operation='{operation['id']}']")
    status, _, _ = people["ben"][0].json("POST", f"/v1/operations/{operation['id']}/deny", body={"reason": HOSTILE})
    assert status == 200
    page.goto(f"/console/operations?requester=ana&command=vps.recreate")
    page.wait_for_selector(f"#operations tr[data-operation='{operation['id']}']")
    page.goto(f"/console/operations/{operation['id']}")
    page.wait_for_selector("#timeline")
    text = page.inner_text("main")
    assert HOSTILE_KEY in text and HOSTILE in text
    assert page.locator("img").count() == 0 and page.locator("main script").count() == 0
    tab.shot("hostile")
    tab.clean()

    # Every console answer carries the policy: the index, a deep link, files, a missing file.
    for path in ["/console/", "/console/index.html", f"/console/operations/{operation['id']}", "/console/app.js",
                 "/console/console.css", "/console/favicon.svg", "/console/nothing.js"]:
        status, headers, _ = http_request(stack, "GET", path)
        assert headers.get("Content-Security-Policy") == CSP, path
        assert status == (404 if path.endswith("nothing.js") else 200), path
    status, headers, _ = http_request(stack, "GET", "/console/app.js")
    assert headers["Content-Type"].startswith("text/javascript") and headers["X-Content-Type-Options"] == "nosniff"


# MARK: - 5. Every page by axe, and by keyboard

def test_every_page_passes_axe_and_the_operations_list_follows_the_feed(stack, people, tabs, measurements):
    tab = tabs()
    page = tab.page
    page.goto("/console/")
    page.wait_for_selector("#token")
    tab.shot("signin")
    tab.axe("sign-in")
    tab.sign_in(people["ben"][1])
    for name, path, ready in [("batches", "/console/batches", "h1"), ("operations", "/console/operations", "#operations")]:
        page.goto(path)
        page.wait_for_selector(ready)
        tab.shot(name)
        tab.axe(name)
    tab_to(page, "filter-vps")

    # Live updates: ten restarts at once; each row turns `succeeded` from the event feed.
    page.wait_for_function("() => document.documentElement.dataset.feed === 'live'")
    page.evaluate("""() => {
        window.__succeeded = {};
        new MutationObserver(() => {
            for (const row of document.querySelectorAll('#operations-body tr[data-operation]')) {
                if (row.querySelector("[data-state='succeeded']") && !window.__succeeded[row.dataset.operation]) {
                    window.__succeeded[row.dataset.operation] = Date.now();
                }
            }
        }).observe(document.getElementById('operations-body'), {childList: true, subtree: true});
    }""")
    delay_ms = 300
    stack.sim("POST", "/__sim/config", {"action_delay_ms": delay_ms})
    sent = {}
    for vps in LIVE_VPS:
        started = time.time()
        status, _, operation = people["ana"][0].json("POST", f"/v1/vps/{vps}/restart", key=new_key())
        assert status == 202, operation
        sent[operation["id"]] = started
    page.wait_for_function("(ids) => ids.every((id) => window.__succeeded[id])", arg=list(sent), timeout=30_000)
    seen = page.evaluate("window.__succeeded")
    # The simulator completes an action delay_ms after it received it (at most `started`).
    delays = sorted(seen[id] - (sent[id] * 1000 + delay_ms) for id in sent)
    measurements["live_update_delay_ms"] = {"p50": round(statistics.median(delays)), "p95": round(delays[int(0.95 * (len(delays) - 1) + 0.5)]),
                                            "max": round(delays[-1]), "count": len(delays)}
    assert delays[-1] < 10_000
    tab.clean()


# MARK: - 6. A deep link before signing in

def test_a_deep_link_opened_before_signing_in_lands_there_after_sign_in(stack, people, tabs):
    status, _, operation = people["ana"][0].json("POST", "/v1/vps/1001/restart", key=new_key())
    assert status == 202
    tab = tabs()
    tab.page.goto(f"/console/operations/{operation['id']}")
    tab.page.wait_for_url("**/console/signin")
    tab.page.fill("#token", people["vera"][1])
    tab.page.press("#token", "Enter")
    tab.page.wait_for_url(f"**/console/operations/{operation['id']}")
    tab.page.wait_for_selector("#operation-state")
    assert operation["id"] in tab.page.inner_text("main")
    tab.clean()
