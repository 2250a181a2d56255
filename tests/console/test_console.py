#!/usr/bin/env python3
"""The web console in a real browser, against `purser up`.

Starts `cargo run -q --locked -- up` on a free port with a fresh data
directory, then drives Debian's chromium through Playwright (headless, no
downloaded browser):

  a. as the platform admin, over HTTP: teams payments (ana by email, bob by
     IAM ARN) and search (cy), and a tiny budget for payments (USD 0.05,
     freeze at 100 %);
  b. as ana, picked in the page's principal picker: request an account on
     My accounts and see it become ready, with a sign-in link, without a
     reload; open its detail and timeline;
  b2. as the platform admin, over HTTP: a lease template hackathon (approval
     always) and bob@example.com as payments' member and approver; as ana,
     request from hackathon in the page: waiting for approval; as bob (a
     second browser context), Approvals: denying without a reason shows the
     API's 400 by the field, approving makes ana's account ready in her page
     without a reload; ana extends its lease (200: extended; beyond the
     template's maximum: waits for an approver); then it is closed over HTTP
     so the later steps see one open account;
  c. as the new member account, report Lambda invocations on the same port's
     EventBridge endpoint (AWSEvents.PutEvents, the account named by the
     Authorization header's Credential=): team payments' spend page moves
     (total, chart) without a reload, and once the budget is crossed the
     frozen banner shows;
  d. as the local admin, raise the budget on the admin page: the banner goes
     (the account is unfrozen);
  e. as cy, open team payments: the API's 403 is shown in the page.

Then once more with a phone's viewport (375x812) for My accounts.

Screenshots go to $CARGO_TARGET_DIR/console-screenshots/ (else
target/console-screenshots/), and to docs/console/ as well when
PURSER_UPDATE_SCREENSHOTS=1. Plain Python: exits non-zero with the reason on
the first failure.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
MEMBER_ARN = "arn:aws:iam::123456789012:user/bob"
ANA = "ana@example.com"
CY = "cy@example.com"
BOB = "bob@example.com"
# How long a page may take to show what the API already says (it polls every 2 s).
SEEN_WITHIN_MS = 20_000


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def screenshots_dir():
    target = Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target")
    if not target.is_absolute():
        target = ROOT / target
    out = target / "console-screenshots"
    out.mkdir(parents=True, exist_ok=True)
    return out


class Purser:
    """`purser up` on a free port, stopped by its process group's id."""

    def __init__(self):
        self.data_dir = tempfile.mkdtemp(prefix="purser-console-")
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(self.data_dir) / "purser-up.log"
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            ["cargo", "run", "-q", "--locked", "--", "up",
             "--data-dir", self.data_dir, "--port", str(self.port), "--allow-aws-sources"],
            cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        # cargo may compile first (or wait on the shared target dir's lock).
        deadline = time.monotonic() + 1800
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"purser up exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"{self.base}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        raise Failure(f"purser up did not answer GET /health:\n{self.tail()}")

    def tail(self, n=60):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def stop(self):
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if getattr(self, "log", None):
            self.log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def call(self, method, path, body=None, principal=None, expect_status=(200,)):
        """The HTTP API as the platform admin (no X-Purser-Principal) or `principal`."""
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if principal:
            headers["X-Purser-Principal"] = principal
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=15) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        if status not in expect_status:
            raise Failure(f"{method} {path} answered {status}, not {expect_status}: {text}")
        return json.loads(text) if text else None

    def put_events(self, account_id, entries):
        """AWSEvents.PutEvents on the same port, as `account_id` (the local
        server takes a 12-digit access key id as the caller's account)."""
        body = json.dumps({"Entries": [
            {"Source": source, "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": "purser"}
            for source, detail_type, detail in entries
        ]}).encode()
        day = datetime.now(timezone.utc).strftime("%Y%m%d")
        request = urllib.request.Request(self.base + "/", data=body, method="POST", headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "AWSEvents.PutEvents",
            "Authorization": f"AWS4-HMAC-SHA256 Credential={account_id}/{day}/us-east-1/events/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=0",
        })
        with urllib.request.urlopen(request, timeout=15) as r:
            answer = json.loads(r.read().decode())
        if answer.get("FailedEntryCount", 0):
            raise Failure(f"PutEvents as {account_id} refused entries: {answer}")


def invocations(batch_id, count, billed_ms, memory_mb=2048, architecture="x86_64"):
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": 1, "batch_id": batch_id, "function_name": "checkout-api",
        "architecture": architecture, "memory_mb": memory_mb,
        "reports": [
            {"request_id": f"{batch_id}-{i:04d}", "timestamp": now, "duration_ms": billed_ms - 0.5,
             "billed_duration_ms": billed_ms, "max_memory_used_mb": memory_mb // 2,
             "init_duration_ms": 380.0 if i == 0 else None}
            for i in range(count)
        ],
    }


def step(text):
    print(f"--> {text}", flush=True)


def run(purser, shots):
    problems = []

    def watch(page):
        def on_console(message):
            text = message.text
            # 4xx answers the test provokes (a 403, a refused form) are logged as
            # failed loads; anything else the page logs as an error is a bug,
            # a CSP violation above all.
            if message.type == "error" and "Failed to load resource" not in text:
                problems.append(f"console error on {page.url}: {text}")
        page.on("console", on_console)
        page.on("pageerror", lambda e: problems.append(f"uncaught error on {page.url}: {e}"))

    # a. the teams and a budget tiny enough for a few reports to cross.
    step("a. teams payments and search, and payments' budget of USD 0.05")
    purser.call("PUT", "/teams/payments", {"quota": 3, "members": [ANA, MEMBER_ARN]})
    purser.call("PUT", "/teams/search", {"quota": 2, "members": [CY]})
    purser.call("PUT", "/teams/payments/budget", {
        "amount": "0.05", "currency": "USD", "thresholds": [50, 100],
        "actions": {"100": ["notify", "freeze"]},
    })
    page_html = urllib.request.urlopen(purser.base + "/").read().decode()
    if 'id="purser-config"' not in page_html or "/console/app.js" not in page_html:
        raise Failure(f"GET / is not the console's page with its config:\n{page_html[:600]}")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US",
                                          timezone_id="UTC")
            page = context.new_page()
            watch(page)

            # b. ana requests an account and sees it become ready.
            step("b. as ana, request an account and see it become ready without a reload")
            page.goto(purser.base + "/")
            picker = page.get_by_test_id("principal-picker")
            expect(picker.locator(f"option[value='{ANA}']")).to_have_count(1, timeout=SEEN_WITHIN_MS)
            expect(picker.locator(f"option[value='{MEMBER_ARN}']")).to_have_count(1)
            expect(picker.locator(f"option[value='{CY}']")).to_have_count(1)
            picker.select_option(ANA)
            expect(page.get_by_test_id("nav-admin")).to_be_hidden()
            form = page.get_by_test_id("request-form")
            expect(form.get_by_label("Team")).to_have_value("payments", timeout=SEEN_WITHIN_MS)
            form.get_by_label("Owner (email)").fill(ANA)
            expect(form.get_by_label("Lease template")).to_be_hidden()  # no templates yet
            form.get_by_label("Purpose").fill("")
            form.get_by_test_id("request-submit").click()
            expect(form.get_by_test_id("error-purpose")).not_to_be_empty(timeout=SEEN_WITHIN_MS)
            form.get_by_label("Purpose").fill("checkout load tests")
            form.get_by_label("Lease (days)").fill("30")
            form.get_by_test_id("request-submit").click()
            expect(form.get_by_test_id("request-status")).to_contain_text("requested", timeout=SEEN_WITHIN_MS)
            row = page.get_by_test_id("account-row").first
            expect(row).to_have_attribute("data-state", "ready", timeout=60_000)
            expect(row.get_by_test_id("signin-link")).to_be_visible(timeout=SEEN_WITHIN_MS)
            account_request = row.get_attribute("data-id")
            account = purser.call("GET", f"/accounts/{account_request}")
            account_id = account["account_id"]
            if not (account_id and len(account_id) == 12):
                raise Failure(f"the ready account has no 12-digit account id: {account}")
            page.screenshot(path=str(shots / "accounts.png"), full_page=True)

            row.get_by_test_id("account-link").click()
            detail = page.get_by_test_id("account-detail")
            expect(detail.get_by_test_id("detail-account-id")).to_have_text(account_id, timeout=SEEN_WITHIN_MS)
            expect(detail.get_by_test_id("signin-link")).to_be_visible()
            expect(detail.get_by_test_id("timeline-entry").first).to_be_visible(timeout=SEEN_WITHIN_MS)
            page.screenshot(path=str(shots / "account-detail.png"), full_page=True)

            # b2. a template that needs an approver; bob approves ana's request.
            step("b2. template hackathon (approval always); ana requests from it, bob approves in Approvals")
            purser.call("PUT", "/templates/hackathon", {
                "description": "A hackathon: two days, at most a week; an approver says yes first.",
                "default_lease_days": 2, "max_lease_days": 7, "approval": "always",
            })
            purser.call("PUT", "/teams/payments", {
                "quota": 3, "members": [ANA, MEMBER_ARN, BOB], "approvers": [BOB],
            })
            page.get_by_test_id("nav-accounts").click()
            form = page.get_by_test_id("request-form")
            template = form.get_by_label("Lease template")
            expect(template.locator("option[value='hackathon']")).to_have_count(1, timeout=SEEN_WITHIN_MS)
            template.select_option("hackathon")
            expect(form.get_by_test_id("template-approval")).to_contain_text("Needs approval")
            expect(form.get_by_label("Lease (days)")).to_have_value("2")
            expect(form.get_by_label("Lease (days)")).to_have_attribute("max", "7")
            form.get_by_label("Purpose").fill("hackathon demo")
            form.get_by_label("Lease (days)").fill("10")
            form.get_by_test_id("request-submit").click()
            expect(form.get_by_test_id("error-lease_days")).to_contain_text("at most 7", timeout=SEEN_WITHIN_MS)
            form.get_by_label("Lease (days)").fill("2")
            form.get_by_test_id("request-submit").click()
            expect(form.get_by_test_id("request-status")).to_contain_text("waiting for approval", timeout=SEEN_WITHIN_MS)
            hack_row = page.locator("[data-testid='account-row'][data-state='pending_approval']")
            expect(hack_row).to_have_count(1, timeout=SEEN_WITHIN_MS)
            expect(hack_row.get_by_test_id("state")).to_have_text("waiting for approval")
            hack_id = hack_row.get_attribute("data-id")
            expect(page.get_by_test_id("nav-approvals")).to_be_hidden()

            approver = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US", timezone_id="UTC")
            bob = approver.new_page()
            watch(bob)
            bob.goto(purser.base + "/")
            bob_picker = bob.get_by_test_id("principal-picker")
            expect(bob_picker.locator(f"option[value='{BOB}']")).to_have_count(1, timeout=SEEN_WITHIN_MS)
            bob_picker.select_option(BOB)
            expect(bob.get_by_test_id("nav-approvals")).to_be_visible(timeout=SEEN_WITHIN_MS)
            bob.get_by_test_id("nav-approvals").click()
            pending = bob.locator(f"[data-testid='approval-row'][data-id='{hack_id}']")
            expect(pending).to_be_visible(timeout=SEEN_WITHIN_MS)
            expect(pending).to_contain_text("hackathon v1")
            expect(pending).to_contain_text(ANA)
            pending.get_by_test_id("deny-button").click()
            expect(pending.get_by_test_id("error-reason")).to_contain_text("reason is required", timeout=SEEN_WITHIN_MS)
            expect(pending.get_by_label("Reason (needed to deny)")).to_have_attribute("aria-invalid", "true")
            bob.screenshot(path=str(shots / "approvals.png"), full_page=True)
            pending.get_by_test_id("approve-button").click()
            expect(bob.get_by_test_id("approvals-status")).to_contain_text("approved", timeout=SEEN_WITHIN_MS)
            expect(pending).to_have_count(0, timeout=SEEN_WITHIN_MS)
            approver.close()

            hack = page.locator(f"[data-testid='account-row'][data-id='{hack_id}']")
            expect(hack).to_have_attribute("data-state", "ready", timeout=60_000)
            hack.get_by_test_id("account-link").click()
            detail = page.get_by_test_id("account-detail")
            expect(detail.get_by_test_id("detail-template")).to_have_text("hackathon, version 1", timeout=SEEN_WITHIN_MS)
            expect(detail.get_by_test_id("detail-decision")).to_contain_text(f"approved by {BOB}")
            extend = page.get_by_test_id("extend-form")
            extend.get_by_label("Extend by (days)").fill("3")
            extend.get_by_test_id("extend-submit").click()
            expect(extend.get_by_test_id("extend-status")).to_contain_text("Lease extended to", timeout=SEEN_WITHIN_MS)
            extend.get_by_label("Extend by (days)").fill("5")
            extend.get_by_test_id("extend-submit").click()
            expect(extend.get_by_test_id("extend-status")).to_contain_text("waits for an approver", timeout=SEEN_WITHIN_MS)
            expect(detail.get_by_test_id("detail-pending-extension")).to_contain_text("5 more days", timeout=SEEN_WITHIN_MS)
            page.screenshot(path=str(shots / "account-extension.png"), full_page=True)

            # Closed, so the budget's freeze in c. freezes one account.
            purser.call("DELETE", f"/accounts/{hack_id}", expect_status=(200, 202))
            deadline = time.monotonic() + 60
            while purser.call("GET", f"/accounts/{hack_id}")["state"] != "closed":
                if time.monotonic() > deadline:
                    raise Failure(f"account {hack_id} did not close")
                time.sleep(0.5)

            # c. the member account reports invocations; the spend page moves.
            step(f"c. invocations reported as account {account_id}: team payments' spend moves, then freezes")
            page.goto(purser.base + "/#/teams/payments")
            total = page.get_by_test_id("spend-total")
            expect(total).to_be_visible(timeout=SEEN_WITHIN_MS)
            before = total.inner_text()
            bars_before = page.get_by_test_id("chart-bar").count()
            purser.put_events(account_id, [
                ("ci", "DeploymentReported", {"version": 1, "stack": "checkout", "status": "SUCCEEDED"}),
                ("purser.telemetry", "InvocationsReported", invocations(f"console-{uuid.uuid4().hex[:8]}", 5, 60_000)),
            ])
            expect(total).not_to_have_text(before, timeout=SEEN_WITHIN_MS)
            expect(page.get_by_test_id("chart-bar")).to_have_count(max(bars_before, 1), timeout=SEEN_WITHIN_MS)
            expect(page.get_by_test_id("chart-cumulative")).to_be_visible()
            expect(page.get_by_test_id("frozen-banner")).to_have_count(0)
            moved = total.inner_text()
            cumulative = page.get_by_test_id("chart-cumulative").get_attribute("points")

            purser.put_events(account_id, [
                ("purser.telemetry", "InvocationsReported", invocations(f"console-{uuid.uuid4().hex[:8]}", 30, 60_000)),
            ])
            expect(total).not_to_have_text(moved, timeout=SEEN_WITHIN_MS)
            expect(page.get_by_test_id("chart-cumulative")).not_to_have_attribute("points", cumulative,
                                                                                  timeout=SEEN_WITHIN_MS)
            banner = page.get_by_test_id("frozen-banner")
            expect(banner).to_be_visible(timeout=60_000)
            expect(banner).to_contain_text(f"{account_id} of team payments is frozen")
            expect(banner).to_contain_text("crossed 100% of its budget")
            expect(page.get_by_test_id("spend-crossed")).to_contain_text("100%")
            page.screenshot(path=str(shots / "team-spend.png"), full_page=True)
            if purser.call("GET", f"/accounts/{account_request}")["state"] != "frozen":
                raise Failure("the banner says frozen but the API does not")

            # d. the admin raises the budget; the banner goes.
            step("d. as the local admin, raise payments' budget on the admin page: the banner goes")
            picker.select_option("")
            expect(page.get_by_test_id("nav-admin")).to_be_visible(timeout=SEEN_WITHIN_MS)
            page.get_by_test_id("nav-admin").click()
            editor = page.locator("[data-testid='team-editor'][data-team='payments']")
            amount = editor.get_by_label("Monthly budget (USD)")
            expect(amount).to_have_value("0.05", timeout=SEEN_WITHIN_MS)
            amount.fill("not money")
            editor.get_by_test_id("budget-save").click()
            expect(editor.get_by_test_id("error-amount")).to_contain_text("amount", timeout=SEEN_WITHIN_MS)
            expect(amount).to_have_attribute("aria-invalid", "true")
            amount.fill("25.00")
            editor.get_by_test_id("budget-save").click()
            expect(editor.get_by_test_id("budget-status")).to_contain_text("Saved", timeout=SEEN_WITHIN_MS)
            expect(page.get_by_test_id("frozen-banner")).to_have_count(0, timeout=60_000)
            expect(page.locator("[data-testid='admin-team-row'][data-team='payments']")).not_to_have_attribute(
                "data-status", "frozen", timeout=SEEN_WITHIN_MS)
            budget = purser.call("GET", "/teams/payments/budget")
            if budget["thresholds"] != [50, 100] or budget["actions"].get("100") != ["notify", "freeze"]:
                raise Failure(f"raising the amount changed the thresholds or actions: {budget}")
            page.screenshot(path=str(shots / "admin.png"), full_page=True)
            state = purser.call("GET", f"/accounts/{account_request}")["state"]
            if state != "ready":
                raise Failure(f"the account is {state} after the budget was raised, not ready")

            # d2. a runaway rule freezes the account; raising the budget
            # would not lift it, the banner says who does.
            step("d2. a runaway rule freezes the account until an admin releases it")
            budget["runaway"] = [{"per": "account", "usd_per_hour": "0.5", "actions": ["notify", "freeze"]}]
            budget = purser.call("PUT", "/teams/payments/budget", {k: budget[k] for k in
                                 ("amount", "currency", "thresholds", "actions", "mode", "runaway")})
            purser.put_events(account_id, [
                ("purser.telemetry", "InvocationsReported",
                 invocations(f"runaway-{uuid.uuid4().hex[:8]}", 6, 900_000, memory_mb=10_240)),
            ])
            banner = page.get_by_test_id("frozen-banner")
            expect(banner).to_contain_text("frozen by the runaway guard", timeout=60_000)
            expect(banner).to_contain_text(f"purser accounts release {account_request}")
            # Saving the budget in the console keeps the rule.
            editor.get_by_test_id("budget-save").click()
            expect(editor.get_by_test_id("budget-status")).to_contain_text("Saved", timeout=SEEN_WITHIN_MS)
            if len(purser.call("GET", "/teams/payments/budget").get("runaway", [])) != 1:
                raise Failure("saving the budget in the console dropped its runaway rule")
            purser.call("POST", f"/accounts/{account_request}/release", expect_status=(202,))
            expect(page.get_by_test_id("frozen-banner")).to_have_count(0, timeout=60_000)

            # e. cy is no member of payments: the 403 shows in the page.
            step("e. as cy, team payments' spend: the 403 is shown in the page")
            picker.select_option(CY)
            page.goto(purser.base + "/#/teams/payments")
            error = page.get_by_test_id("page-error")
            expect(error).to_be_visible(timeout=SEEN_WITHIN_MS)
            expect(error).to_contain_text("not a member of team payments")
            expect(page.get_by_test_id("spend-chart")).to_have_count(0)
            page.screenshot(path=str(shots / "forbidden.png"), full_page=True)
            context.close()

            # Once more on a phone.
            step("a phone's viewport (375x812): My accounts")
            phone = browser.new_context(viewport={"width": 375, "height": 812}, device_scale_factor=2,
                                        is_mobile=True, has_touch=True, locale="en-US", timezone_id="UTC")
            mobile = phone.new_page()
            watch(mobile)
            mobile.goto(purser.base + "/#/accounts")
            mobile_picker = mobile.get_by_test_id("principal-picker")
            expect(mobile_picker.locator(f"option[value='{ANA}']")).to_have_count(1, timeout=SEEN_WITHIN_MS)
            mobile_picker.select_option(ANA)
            expect(mobile.get_by_test_id("account-row")).to_have_count(1, timeout=SEEN_WITHIN_MS)
            width = mobile.evaluate("document.documentElement.scrollWidth")
            if width > 375:
                raise Failure(f"My accounts is {width} px wide on a 375 px phone: it scrolls sideways")
            mobile.screenshot(path=str(shots / "accounts-phone.png"), full_page=True)
            phone.close()
        finally:
            browser.close()

    if problems:
        raise Failure("the page logged errors:\n  " + "\n  ".join(problems))


def main():
    if not Path(CHROMIUM).exists():
        print(f"FAILED: {CHROMIUM} is missing (Debian: apt-get install chromium)", file=sys.stderr)
        return 1
    shots = screenshots_dir()
    purser = Purser()
    step(f"purser up on {purser.base} (data in {purser.data_dir})")
    try:
        purser.start()
        run(purser, shots)
    except (Failure, PlaywrightTimeout, PlaywrightError, AssertionError) as e:
        print(f"FAILED: {e}", file=sys.stderr)
        print(f"--- the last lines of purser up's log:\n{purser.tail()}", file=sys.stderr)
        return 1
    finally:
        purser.stop()
    if os.environ.get("PURSER_UPDATE_SCREENSHOTS") == "1":
        docs = ROOT / "docs" / "console"
        docs.mkdir(parents=True, exist_ok=True)
        for shot in sorted(shots.glob("*.png")):
            shutil.copy2(shot, docs / shot.name)
        print(f"screenshots copied to {docs}")
    print(f"screenshots in {shots}")
    print("console: 1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
