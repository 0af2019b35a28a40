"""Debian's headless Chromium driven by Playwright, for the page tests: a page that notes
every console error, failed request and error response for one origin (the TOM's own URLs;
resources TOM Toolkit loads from public CDNs cannot load on a machine without internet)."""
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import REPO

ARTIFACTS = Path(os.environ.get('TEST_ARTIFACTS', REPO / 'test-artifacts')) / 'browser'
# As this machine's headless Chromium needs: no sandbox as root, nothing phoning home.
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update', '--disable-sync']


def chromium():
    found = shutil.which('chromium') or shutil.which('chromium-browser')
    if not found:
        pytest.fail("Chromium not found: apt-get install chromium (`make test` needs Debian's browser)")
    return found


@contextmanager
def browser_page(origin):
    """A page whose `problems` lists what went wrong with the URLs under origin."""
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={'width': 1280, 'height': 900})
            page.problems = []

            def console(message):
                if message.type == 'error' and (message.location or {}).get('url', origin).startswith(origin):
                    page.problems.append(f'console: {message.text} at {message.location}')

            page.on('console', console)
            page.on('pageerror', lambda error: page.problems.append(f'page error: {error}'))
            # ERR_ABORTED is the browser cancelling a request as it leaves the page (a favicon
            # still on its way when a form is sent): not a failure of the TOM's.
            page.on('requestfailed', lambda request: request.url.startswith(origin)
                    and 'ERR_ABORTED' not in (request.failure or '')
                    and page.problems.append(f'failed: {request.url} {request.failure}'))
            page.on('response', lambda response: response.url.startswith(origin) and response.status >= 400
                    and page.problems.append(f'{response.status}: {response.url}'))
            yield page
        finally:
            browser.close()


def log_in(page, origin, username, password):
    page.goto(origin + '/accounts/login/')
    page.fill('input[name="login"]', username)
    page.fill('input[name="password"]', password)
    page.click('form button[type="submit"]')
    page.wait_for_url(lambda url: '/accounts/login/' not in url)
