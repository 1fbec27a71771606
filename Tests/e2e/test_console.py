"""The console (console/, served by nginx under /console/) in a real browser: Debian's
Chromium driven by Playwright, headless, against one stack for the whole module.

An approver sees a request with its plan and approves it by keyboard, and the page follows
the operation to `succeeded` from the event feed without a reload; a requester and a viewer
see no button they may not use (and the API refuses anyway); a denial needs a reason in the
page and in the API; hostile names and reasons are shown as text under the console's
Content-Security-Policy; axe finds no serious or critical violation on any page; a deep link
opened before signing in is where sign-in lands; an approval shows the VPS as Hostinger shows
it now (quietly "not available" when refused or gone); the freezes page lists the windows in
force and coming; a batch page shows progress by state and its children, with cancel and
resume for the requester or an approver of every VPS only. Screenshots of every page go to
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

from vpsgate_e2e import SHORT_WINDOWS, Client, http_request, new_key, reset_change_control, sim_requests, sql
from vpsgate_stack import issue_client_certificate

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / ".run" / "console-screenshots"
CSP = "default-src 'self'; frame-ancestors 'none'"
HOSTILE = "<img src=x onerror=alert(1)></script>"
HOSTILE_KEY = "</script><img/src=x/onerror=alert(1)>"
TEMPLATE = 1130
LIVE_VPS = list(range(1301, 1321))  # 20 operations: the live-update delay's p95
BATCH_VPS = [1321, 1322, 1323]


@pytest.fixture(scope="module")
def stack(stack_factory):
    stack = stack_factory("console", destroy_approvals=None, extra_env=SHORT_WINDOWS)
    for vps in [1201] + LIVE_VPS + BATCH_VPS:
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

    def __init__(self, browser, stack, **options):
        self.stack = stack
        self.context = browser.new_context(base_url=stack.url, ignore_https_errors=True, viewport={"width": 1200, "height": 800},
                                           **options)
        self.page = self.context.new_page()
        self.dialogs, self.errors, self.without_csp, self.requests = [], [], [], []
        self.page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("request", lambda request: self.requests.append((request.method, request.url)))
        self.page.on("response", self._response)

    def _console(self, message):
        # The sign-in page asks GET /v1/me without a token first (a client certificate signs
        # in where nginx verifies them); its 401 where none is presented is expected.
        if message.type == "error" and not (message.location.get("url", "").endswith("/v1/me") and "401" in message.text):
            self.errors.append(message.text)

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


def recreate(client, vps, key=None, reason=None):
    status, headers, operation = client.json("POST", f"/v1/vps/{vps}/recreate", key=key or new_key(),
                                             body={"template_id": TEMPLATE, "password": "Matrix7Password-Ok", "confirm": vps},
                                             headers={"Vpsgate-Reason": reason} if reason else None)
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
    operation = recreate(people["ana"][0], 1003, reason="rebuild after the kernel bug (OPS-7)")
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
    # Where the time goes: each request's start and end (ms from navigation), in the order made.
    measurements["approvals_requests_ms"] = page.evaluate("""() => performance.getEntriesByType('resource')
        .filter((e) => !new URL(e.name).pathname.startsWith('/v1/events'))
        .map((e) => [new URL(e.name).pathname, Math.round(e.startTime), Math.round(e.responseEnd)])""")
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
    assert "rebuild after the kernel bug (OPS-7)" in text, "the requester's reason"
    # The VPS as Hostinger shows it now, drawn after the page (a cached read).
    page.wait_for_selector("#vps-now dl")
    now = page.inner_text("#vps-now")
    assert "srv1003.hstgr.cloud" in now and "running" in now, now
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
    viewer.page.wait_for_selector("#vps-now dl")
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

    # Live updates: twenty restarts at once; each row turns `succeeded` from the event feed.
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
    p95 = delays[int(0.95 * (len(delays) - 1) + 0.5)]
    measurements["live_update_delay_ms"] = {"p50": round(statistics.median(delays)), "p95": round(p95),
                                            "max": round(delays[-1]), "count": len(delays), "goal_p95": 1000}
    assert len(delays) == 20
    # The goal is 1 s (recorded above); a machine busy with other builds gets some slack here.
    assert p95 < 3000, delays
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


# MARK: - 7. The VPS now: refused or gone quietly, hostile values as text; the reason

def test_the_vps_now_is_quiet_when_refused_and_shows_hostile_values_and_a_reason_as_text(stack, people, tabs):
    operation = recreate(people["ana"][0], 1201)
    path = f"/console/approvals/{operation['id']}"
    tab = tabs()
    page = tab.page
    # Hostinger's view of the VPS refused (403), then gone (404): the page says so and goes on.
    def refused(status):
        body = json.dumps({"type": f"https://vpsgate.dev/docs/problems#{'forbidden' if status == 403 else 'not-found'}",
                           "title": "no", "status": status})
        return lambda route: route.fulfill(status=status, content_type="application/problem+json", body=body)
    for status in (403, 404):
        page.route("**/v1/vps/1201", refused(status))
        if status == 403:
            tab.sign_in(people["ben"][1], at=path)
        else:
            page.reload()
        page.wait_for_selector("#vps-now:not([aria-busy])")
        assert "Not available" in page.inner_text("#vps-now")
        assert page.locator("#approve").count() == 1 and page.locator(".error[role=alert]").count() == 0
        page.unroute("**/v1/vps/1201")
    # Hostile values from Hostinger and a `reason` on the operation (when the API gives one) are text.
    page.route("**/v1/vps/1201", lambda route: route.fulfill(status=200, content_type="application/json", body=json.dumps(
        {"id": 1201, "hostname": HOSTILE, "state": HOSTILE_KEY, "template": {"id": 1, "name": HOSTILE}, "ipv4": [{"address": HOSTILE}]})))

    def with_reason(route):
        answer = route.fetch()
        body = answer.json()
        body["reason"] = HOSTILE
        route.fulfill(response=answer, body=json.dumps(body))
    page.route(f"**/v1/operations/{operation['id']}", with_reason)
    page.reload()
    page.wait_for_selector("#vps-now dl")
    text = page.inner_text("main")
    assert text.count(HOSTILE) >= 4 and HOSTILE_KEY in text, text
    assert page.locator("img").count() == 0 and page.locator("main script").count() == 0
    tab.axe("approval (VPS now)")
    tab.errors = [e for e in tab.errors if "403" not in e and "404" not in e]  # the refusals, made on purpose
    tab.clean()


# MARK: - 8. Freezes

def test_the_freezes_page_lists_the_windows_in_force_and_coming_as_text(stack, people, tabs):
    def add(*args):
        return int(stack.admin("freeze", "add", *args, "--actor", "test").stdout.split()[1])
    everywhere = add("--vps", "*", "--for", "1h", "--reason", HOSTILE)
    one = add("--vps", "1201", "--for", "2h", "--reason", "kernel upgrade on 1201")
    coming = add("--vps", "*", "--starts", "3h", "--for", "1h", "--reason", "next release")
    status, _, listed = people["vera"][0].json("GET", "/v1/freezes")
    assert status == 200 and [w["id"] for w in listed["data"]] == [everywhere, one, coming]
    tab = tabs()
    page = tab.page
    tab.sign_in(people["vera"][1], at="/console/freezes")
    page.wait_for_selector("#freezes")
    rows = page.locator("#freezes tbody tr")
    assert rows.count() == 3
    first, second, third = (rows.nth(i).inner_text() for i in range(3))
    assert "every VPS" in first and "in force" in first and HOSTILE in first
    assert listed["data"][0]["starts_at"] in first and listed["data"][0]["ends_at"] in first, "times as text"
    assert "vps 1201" in second and "kernel upgrade" in second
    assert "coming" in third and "next release" in third
    assert page.locator("img").count() == 0
    assert page.locator("#nav a[href='/console/freezes']").get_attribute("aria-current") == "page"
    tab.shot("freezes")
    tab.axe("freezes")
    # None in force or coming: the page says so.
    sql(stack, "DELETE FROM freeze_windows")
    page.reload()
    page.wait_for_selector("#no-freezes")
    tab.clean()


# MARK: - 9. Batches

def halted_batch(stack, client, targets):
    """A restart batch whose first child fails (422), so it halts at once (max_failures 0)."""
    stack.sim("POST", "/__sim/faults", {"method": "POST", "path": f"/{targets[0]}/restart$", "status": 422})
    status, _, batch = client.json("POST", "/v1/batches", body={"command": "vps.restart", "vps": targets}, key=new_key())
    assert status == 202, batch
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        _, _, batch = client.json("GET", f"/v1/batches/{batch['id']}")
        if batch["state"] == "halted":
            stack.sim("DELETE", "/__sim/faults")
            return batch
        time.sleep(0.2)
    raise AssertionError(f"the batch did not halt: {batch}")


def test_the_batch_pages_show_progress_and_children_and_cancel_and_resume_for_those_allowed(stack, people, tabs):
    batch = halted_batch(stack, people["ana"][0], BATCH_VPS)
    path = f"/console/batches/{batch['id']}"

    # A viewer sees the progress by state and the children, and no button.
    viewer = tabs()
    viewer.sign_in(people["vera"][1], at=path)
    viewer.page.wait_for_selector("#batch-children")
    progress = viewer.page.inner_text("#batch-progress")
    assert f"of {len(BATCH_VPS)} done" in progress and "failed 1" in progress, progress
    children = viewer.page.locator("#batch-children tbody tr")
    assert children.count() == len(BATCH_VPS)
    assert "failed" in viewer.page.inner_text(f"#batch-children tr[data-vps='{BATCH_VPS[0]}']")
    assert viewer.page.locator("#batch-cancel, #batch-resume").count() == 0
    viewer.shot("batch-viewer")
    viewer.axe("batch (viewer)")
    viewer.clean()

    # The requester's list shows its progress; the requester resumes it from its page and it runs to its end.
    requester = tabs()
    requester.sign_in(people["ana"][1], at="/console/batches")
    requester.page.wait_for_selector("#batches")
    assert "failed 1" in requester.page.inner_text(f"#batches tr:has(a[href='{path}'])")
    requester.axe("batches")
    requester.page.click(f"#batches a[href='{path}']")
    requester.page.wait_for_selector("#batch-resume")
    assert requester.page.locator("#batch-cancel").count() == 1
    requester.page.click("#batch-resume")
    requester.page.wait_for_selector("#batch-state [data-state='completed_with_failures']", timeout=20_000)
    assert requester.page.locator("#batch-resume, #batch-cancel").count() == 0, "nothing to do on a finished batch"
    requester.shot("batch-resumed")
    requester.clean()

    # An approver of every VPS (not the requester) may cancel a halted batch.
    other = halted_batch(stack, people["ana"][0], BATCH_VPS)
    approver = tabs()
    approver.sign_in(people["ben"][1], at=f"/console/batches/{other['id']}")
    approver.page.wait_for_selector("#batch-cancel")
    assert approver.page.locator("#batch-resume").count() == 1
    approver.page.click("#batch-cancel")
    approver.page.wait_for_selector("#batch-state [data-state='cancelled']")
    assert people["ana"][0].json("GET", f"/v1/batches/{other['id']}")[2]["state"] == "cancelled"
    approver.axe("batch (approver)")
    approver.clean()


# MARK: - Mutual TLS: the browser's certificate is the identity

def test_with_mutual_tls_the_browser_certificate_signs_in_without_a_token_or_cookie(stack_factory, browser):
    """The shipped nginx with its mutual-TLS variant: a browser presenting a certificate is
    signed in as its subject, with no token form, no token kept and no cookie, follows an
    operation live, and stays signed out once it signs out until asked; a browser without
    one gets the token form; a request another site's page started does not count."""
    mtls = stack_factory("console-mtls", production=True, tcp=True, auth="mtls")
    approver = "CN=mtls-ben,O=vpsgate-clients"
    mtls.grant(approver, "*", "approver")
    mtls.grant("CN=mtls-ana,O=vpsgate-clients", "1001", "operator")
    ben = issue_client_certificate(mtls.tls_dir, "ben", "/O=vpsgate-clients/CN=mtls-ben")
    ana = issue_client_certificate(mtls.tls_dir, "ana", "/O=vpsgate-clients/CN=mtls-ana")

    def as_ana(method, path, headers=None):
        context = mtls.ssl_context()
        context.load_cert_chain(*ana)
        status, _, body = http_request(mtls, method, path, b"" if method == "POST" else None,
                                       dict({"Content-Type": "application/json"}, **(headers or {})), context=context, timeout=30)
        return status, json.loads(body) if body else None

    # Another site's page cannot borrow the certificate; this site's pages and other clients can.
    assert as_ana("GET", "/v1/me", {"Sec-Fetch-Site": "cross-site"})[0] == 401
    assert as_ana("GET", "/v1/me", {"Sec-Fetch-Site": "same-site"})[0] == 401
    assert as_ana("GET", "/v1/me", {"Sec-Fetch-Site": "same-origin"})[1]["principal"] == "CN=mtls-ana,O=vpsgate-clients"
    assert as_ana("GET", "/v1/me")[0] == 200

    tab = Tab(browser, mtls, client_certificates=[{"origin": mtls.url, "certPath": str(ben[0]), "keyPath": str(ben[1])}])
    set_cookies, authorized = [], []
    tab.page.on("response", lambda response: set_cookies.append(response.url) if response.headers.get("set-cookie") else None)
    tab.page.on("request", lambda request: authorized.append(request.url) if "authorization" in request.headers else None)
    try:
        page = tab.page
        page.goto("/console/")
        page.wait_for_function("() => document.documentElement.dataset.page === '/console/approvals'")
        assert page.inner_text("#who") == f"Signed in as {approver} (client certificate)"
        kept = page.evaluate("() => Object.fromEntries(Object.entries(sessionStorage))")
        assert "vpsgate.token" not in kept and kept["vpsgate.principal"] == approver, kept
        assert page.evaluate("document.cookie") == "" and set_cookies == []
        tab.shot("signin-mtls-approvals")

        # An operation followed live over the event feed, signed in by certificate.
        page.goto("/console/operations")
        page.wait_for_function("() => document.documentElement.dataset.feed === 'live'")
        status, operation = as_ana("POST", "/v1/vps/1001/restart", {"Idempotency-Key": new_key()})
        assert status == 202, operation
        page.wait_for_selector(f"#operations-body tr[data-operation='{operation['id']}'] [data-state='succeeded']", timeout=30_000)

        # Signing out stays signed out (the browser still holds the certificate) until asked.
        page.click("#signout")
        page.wait_for_selector("#use-certificate")
        assert page.inner_text("#who") == "" and page.is_visible("#token")
        page.click("#use-certificate")
        page.wait_for_function("() => document.documentElement.dataset.page === '/console/approvals'")
        assert approver in page.inner_text("#who")
        tab.axe("approvals (mutual TLS)")
        assert authorized == [], "no request carried Authorization: the certificate is the identity"
        tab.clean()
    finally:
        tab.close()

    # No certificate: the token form, quietly (the probe's 401 is expected), and this
    # variant takes no token.
    bare = Tab(browser, mtls)
    try:
        bare.page.goto("/console/approvals")
        bare.page.wait_for_url("**/console/signin")
        bare.page.wait_for_selector("#token")
        bare.page.wait_for_load_state("networkidle")
        assert bare.page.url.endswith("/console/signin") and bare.page.inner_text("#who") == ""
        bare.page.fill("#token", "vpsg_" + "A" * 43)
        bare.page.press("#token", "Enter")
        bare.page.wait_for_function("() => document.querySelector('main .error').textContent !== ''")
        assert "not valid" in bare.page.inner_text("main .error")
        bare.errors = [e for e in bare.errors if "401" not in e]  # the refused token, tried on purpose
        bare.clean()
    finally:
        bare.close()

