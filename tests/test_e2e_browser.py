"""End to end: a person logs into the Django admin in a real (headless) Chromium.

pytest-django's ``live_server`` serves the project over HTTP; Playwright's sync API
drives Debian's Chromium (``apt-get install chromium``; Playwright's own browser
download is never used). One browser per module, a fresh browser context (cookies,
storage) per test.

Django and Playwright's sync API in one thread: ``sync_playwright().start()`` leaves an
asyncio loop registered as *running* in the calling thread (its greenlet dispatcher),
so every ORM call made afterwards in that thread (the test's seeding, pytest-django's
flush after a transactional test) raises ``SynchronousOnlyOperation``. The test code
is synchronous and never shares a connection with a coroutine, so the module-scoped
``_chromium`` fixture sets ``DJANGO_ALLOW_ASYNC_UNSAFE`` for the lifetime of this module
only (Django reads it on every call) and restores it afterwards; ``playwright.stop()``
unregisters the loop, so later modules see a normal thread. The live server answers in
its own thread, where no loop runs, and is unaffected.
"""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.factories import TenantFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ADMIN_EMAIL = "admin@ai-secretary.com"
ADMIN_PASSWORD = "admin123"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 15_000


class _Chromium:
    """Starts Playwright and Chromium on first use; ``close`` stops both (safe to call twice)."""

    def __init__(self):
        self.playwright = None
        self.browser = None

    def get(self, executable_path):
        if self.browser is None:
            from playwright.sync_api import expect, sync_playwright

            expect.set_options(timeout=TIMEOUT_MS)  # expect()'s own default is 5 s: short on a busy CI machine
            self.playwright = sync_playwright().start()
            self.browser = self.playwright.chromium.launch(
                executable_path=executable_path, headless=True, args=CHROMIUM_ARGS
            )
        return self.browser

    def close(self):
        try:
            if self.browser is not None:
                self.browser.close()
        finally:
            self.browser = None
            if self.playwright is not None:
                self.playwright.stop()
                self.playwright = None


@pytest.fixture(scope="module")
def _chromium():
    """One headless Chromium for the whole module, launched by the first test that needs it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        chromium = _Chromium()
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def browser(_chromium, chromium_path):
    # chromium_path (tests/conftest.py) skips, or fails with REQUIRE_E2E=1, when Chromium is absent.
    return _chromium.get(chromium_path)


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def seeded():
    """The admin initdb seeds, plus two tenants with users so the admin lists have content."""
    call_command("initdb", "--noinput", verbosity=0)
    acme = TenantFactory(name="Acme Corp", slug="acme-corp")
    globex = TenantFactory(name="Globex Ltd", slug="globex-ltd")
    users = [
        UserFactory(email="alice@acme.example", tenant=acme),
        UserFactory(email="bob@acme.example", tenant=acme),
        UserFactory(email="carol@globex.example", tenant=globex),
    ]
    return {"tenants": [acme, globex], "users": users}


def log_in(page, base_url, email, password):
    page.goto(base_url + "/admin/")
    # Not logged in: the admin sends the browser to its login form.
    page.wait_for_url("**/admin/login/**")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state("domcontentloaded")


def test_admin_logs_in_and_sees_tenants_and_users(page, live_server, seeded, tmp_path):
    from playwright.sync_api import expect

    log_in(page, live_server.url, ADMIN_EMAIL, ADMIN_PASSWORD)

    expect(page.get_by_role("heading", name="Site administration")).to_be_visible()
    expect(page).to_have_url(live_server.url + "/admin/")
    # The index names each app and each model; the model rows are the lists' links.
    tenants_link = page.locator("#tenants-tenant").get_by_role("link", name="Tenants", exact=True)
    users_link = page.locator("#accounts-user").get_by_role("link", name="Users", exact=True)
    expect(tenants_link).to_be_visible()
    expect(users_link).to_be_visible()

    shot = tmp_path / "admin-index.png"
    page.screenshot(path=str(shot), full_page=True)
    data = shot.read_bytes()
    assert len(data) > 1000 and data.startswith(b"\x89PNG\r\n\x1a\n"), "screenshot is not a non-empty PNG"

    tenants_link.click()
    expect(page.get_by_role("heading", name="Select tenant to change")).to_be_visible()
    results = page.locator("#result_list")
    for name in ["System", *(t.name for t in seeded["tenants"])]:
        expect(results.get_by_role("link", name=name, exact=True)).to_be_visible()

    page.locator(".breadcrumbs").get_by_role("link", name="Home").click()
    users_link.click()
    expect(page.get_by_role("heading", name="Select user to change")).to_be_visible()
    results = page.locator("#result_list")
    for email in [ADMIN_EMAIL, *(u.email for u in seeded["users"])]:
        expect(results.get_by_role("link", name=email, exact=True)).to_be_visible()


def test_wrong_password_shows_the_error_and_stays_on_the_login_page(page, live_server, seeded):
    from playwright.sync_api import expect

    log_in(page, live_server.url, ADMIN_EMAIL, "not-the-password")

    expect(page.locator(".errornote")).to_contain_text("Please enter the correct email address and password")
    expect(page).to_have_url(live_server.url + "/admin/login/?next=/admin/")
    expect(page.get_by_label("Email address")).to_have_value(ADMIN_EMAIL)
    expect(page.get_by_role("heading", name="Site administration")).to_have_count(0)
    expect(page.get_by_role("link", name="Tenants", exact=True)).to_have_count(0)


def test_staff_open_the_database_status_page_from_the_admin_index(page, live_server, seeded):
    """Health checks with ids, the last runs with their steps, the lock, the environment; screenshot kept."""
    from playwright.sync_api import expect

    from tests.support.databases import ROOT

    log_in(page, live_server.url, ADMIN_EMAIL, ADMIN_PASSWORD)
    page.get_by_role("link", name="Database status").click()
    expect(page.get_by_role("heading", name="Database status")).to_be_visible()
    checks = page.locator("#dbinit-checks")
    for check_id in ("dbinit.I006", "dbinit.I001", "dbinit.I003", "dbinit.I005", "dbinit.I007", "dbinit.I010"):
        expect(checks.get_by_text(check_id, exact=True)).to_be_visible()
    runs = page.locator("#dbinit-runs tbody tr")
    expect(runs.first).to_contain_text("initdb")
    expect(runs.first).to_contain_text("migrate")
    expect(page.locator("#dbinit-lock")).to_contain_text("Free.")
    expect(page.locator("#dbinit-environment")).to_contain_text("AISECRETARY_ENV")
    expect(page.locator("#dbinit-overall")).to_contain_text("Status:")

    artifacts = ROOT / "var" / "artifacts"  # kept by CI (gitignored locally)
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "database-status.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_the_database_status_page_is_for_staff_only(page, live_server, seeded):
    from playwright.sync_api import expect

    page.goto(live_server.url + "/admin/dbinit/status/")
    page.wait_for_url("**/admin/login/?next=/admin/dbinit/status/")
    expect(page.get_by_role("heading", name="Database status")).to_have_count(0)
    log_in(page, live_server.url, seeded["users"][0].email, "password-123")  # a tenant user, not staff
    page.goto(live_server.url + "/admin/dbinit/status/")
    expect(page.get_by_role("heading", name="Database status")).to_have_count(0)
