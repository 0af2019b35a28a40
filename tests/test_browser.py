"""The Jobs pages in a real browser (tests/browser.py) on the TOM served by Django's live
server, with a real `jobs cron` process (the cron container's program) taking Run now. Screenshots go to
test-artifacts/browser/; any console error, failed request or error response for the TOM's
own URLs fails the test."""
import os
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from myapp.jobs import history
from myapp.jobs.options import spec_from_words
from myapp.models import JobRun, ScheduledJob
from tests.browser import ARTIFACTS, browser_page, log_in

CRONTAB = ('*/15 * * * * python manage.py jobs run update_statuses\n'
           '@daily python manage.py jobs run --name sessions --timeout 5m clearsessions\n')
PASSWORD = 'browser-test-password'
pytestmark = pytest.mark.browser


@pytest.fixture
def page(live_server):
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are safe.
    os.environ['DJANGO_ALLOW_ASYNC_UNSAFE'] = 'true'
    try:
        with browser_page(live_server.url) as page:
            yield page
    finally:
        os.environ.pop('DJANGO_ALLOW_ASYNC_UNSAFE', None)


def test_staff_see_the_jobs_open_one_and_run_it_now(live_server, page, cron_program):
    cron_program(CRONTAB)
    ScheduledJob.objects.update(first_seen=timezone.now() - timedelta(days=1))
    sessions = spec_from_words(['--name', 'sessions', 'clearsessions'])
    for outcome in (JobRun.Outcome.SUCCEEDED, JobRun.Outcome.FAILED, JobRun.Outcome.SUCCEEDED):
        history.finish(history.start(sessions, JobRun.Trigger.SCHEDULE), outcome, 0 if outcome == 'succeeded' else 1,
                       summary=f'done: {outcome}')
    statuses = history.start(spec_from_words(['update_statuses']), JobRun.Trigger.SCHEDULE)
    history.finish(statuses, JobRun.Outcome.FAILED, 1, summary='CommandError: 1 observation(s) could not be refreshed')
    User.objects.create_user('pi', password=PASSWORD, is_staff=True)

    log_in(page, live_server.url, 'pi', PASSWORD)

    page.click('#nav-jobs')
    page.wait_for_selector('#jobs')
    rows = page.locator('#jobs tbody tr')
    assert rows.count() == 2
    assert page.inner_text('#jobs-overdue').startswith('1 job overdue: update_statuses, due ')
    assert 'OVERDUE' in page.inner_text('#jobs tr[data-job="update_statuses"]')
    sessions_row = page.locator('#jobs tr[data-job="sessions"]')
    assert 'At 00:00' in sessions_row.inner_text()
    assert sessions_row.locator('td').nth(2).inner_text().count(' UTC') == 3  # the next three runs
    page.screenshot(path=str(ARTIFACTS / 'jobs.png'), full_page=True)

    page.click('#jobs a:text-is("sessions")')
    page.wait_for_selector('#duration-chart .plotly-graph-div .main-svg')
    assert page.locator('#duration-chart .scatterlayer .point').count() == 3
    page.screenshot(path=str(ARTIFACTS / 'job.png'), full_page=True)

    page.wait_for_load_state('load')
    page.click('#run-now-button')
    page.wait_for_selector('.run-request[data-state="succeeded"]', timeout=90_000)
    assert 'Run now: succeeded' in page.inner_text('#run-now-status')
    page.screenshot(path=str(ARTIFACTS / 'run-now.png'), full_page=True)

    assert JobRun.objects.filter(name='sessions', trigger='run now', outcome='succeeded').count() == 1
    assert page.problems == []
