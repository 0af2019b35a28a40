"""The Jobs pages in a real browser (tests/browser.py) on the TOM served by Django's live
server, with a real `jobs cron` process (the cron container's program) taking Run now and
running the ATLAS query that a target's page queues. Screenshots go to
test-artifacts/browser/; any console error, failed request or error response for the TOM's
own URLs fails the test."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.utils import timezone

from myapp.jobs import history
from myapp.jobs.options import spec_from_words
from myapp.models import JobRun, ScheduledJob
from tests.browser import ARTIFACTS, log_in
from tests.conftest import atlas_env, make_target, wait_for

CRONTAB = ('*/15 * * * * python manage.py jobs run update_statuses\n'
           '@daily python manage.py jobs run --name sessions --timeout 5m clearsessions\n')
PASSWORD = 'browser-test-password'
pytestmark = pytest.mark.browser


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


def test_the_atlas_query_from_a_target_page_answers_at_once_and_its_photometry_appears(
        live_server, page, cron_program, tom_env, atlas, atlas_settings):
    from tom_dataproducts.models import PhotometryReducedDatum

    tom_env.update(atlas_env(tom_env, atlas))
    cron_program('@yearly python manage.py jobs run --no-catch-up clearsessions\n')
    target = make_target()
    User.objects.create_user('pi', password=PASSWORD, is_staff=True, is_superuser=True)
    atlas.finish_after = None  # ATLAS holds the job until the test lets it finish
    log_in(page, live_server.url, 'pi', PASSWORD)

    page.goto(f'{live_server.url}/targets/{target.pk}/?tab=manage-data')
    page.click('a[title="Atlas"]')
    page.wait_for_selector('form input[name="min_date_mjd"]')
    with page.expect_response(lambda response: response.request.method == 'POST') as posted:
        page.click('form:has(input[name="min_date_mjd"]) [type="submit"]')
    page.wait_for_url(f'**/targets/{target.pk}/?tab=photometry')
    # From the request sent to the answer's first byte, as the browser timed it.
    timing = posted.value.request.timing
    answered = timing['responseStart'] - timing['requestStart']
    print(f'the ATLAS form answered in {answered:.0f} ms')
    assert posted.value.status == 302 and answered < 1000

    assert 'Asynchronous Atlas query is processing' in page.content()
    wait_for('ATLAS to be asked by the worker', lambda: atlas.jobs and atlas.jobs[0]['reports'] > 0, 60)
    assert not PhotometryReducedDatum.objects.exists()  # the page did not wait for it
    atlas.finish_after = 0
    wait_for('the photometry', lambda: PhotometryReducedDatum.objects.filter(target=target).count() == 3, 60)
    page.goto(f'{live_server.url}/targets/{target.pk}/?tab=photometry')
    assert page.locator('#photometry .plotly-graph-div').count() >= 1
    page.goto(f'{live_server.url}/jobs/')
    recent = page.locator('#tasks-recent tbody tr').first
    assert 'atlas_query' in recent.inner_text() and 'succeeded' in recent.inner_text()
    page.screenshot(path=str(ARTIFACTS / 'tasks.png'), full_page=True)
    assert page.problems == []


def test_staff_pause_a_job_from_its_page_and_resume_it(live_server, page):
    from myapp.jobs import schedule

    schedule.record_load(CRONTAB)
    User.objects.create_user('pi', password=PASSWORD, is_staff=True)
    log_in(page, live_server.url, 'pi', PASSWORD)
    page.goto(f'{live_server.url}/jobs/sessions/')

    page.fill('#pause-for', '2h')
    page.fill('#pause-reason', 'dome closed for maintenance')
    page.click('#pause-button')

    page.wait_for_selector('#job-paused')
    assert 'paused by pi at ' in page.inner_text('#job-paused')
    assert 'dome closed for maintenance' in page.inner_text('#job-paused')
    page.goto(f'{live_server.url}/jobs/')
    assert 'PAUSED' in page.inner_text('#jobs tr[data-job="sessions"]')
    page.screenshot(path=str(ARTIFACTS / 'paused.png'), full_page=True)
    page.goto(f'{live_server.url}/jobs/sessions/')
    page.click('#resume-button')
    page.wait_for_selector('#pause-button')
    assert page.locator('#job-paused').count() == 0
    assert page.problems == []
