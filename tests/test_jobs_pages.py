"""The Jobs pages, their JSON view and Run now: content and who may see and do what
(anonymous, user, staff), with Django's test client."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.contrib.staticfiles import finders
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from myapp.jobs import history, schedule
from myapp.jobs.options import spec_from_words
from myapp.models import JobRequest, JobRun, ScheduledJob
from tests.conftest import run_job

pytestmark = pytest.mark.django_db
CRONTAB = ('*/15 * * * * python manage.py jobs run update_statuses\n'
           '5 * * * * python manage.py jobs run --timeout 50m save_data\n')
PASSWORD = 'pw-for-tests-only'


@pytest.fixture
def jobs():
    schedule.record_load(CRONTAB)
    ScheduledJob.objects.update(first_seen=timezone.now() - timedelta(days=1))
    save_data = spec_from_words(['save_data'])
    run = history.start(save_data, JobRun.Trigger.SCHEDULE)
    return history.finish(run, JobRun.Outcome.FAILED, 1, summary='done: 3 record(s) checked, 1 failure(s)',
                          output_tail='FAILED observation 42 (LCORedirect): HTTP 500\ndone: 3 record(s) checked')


@pytest.fixture
def user_client(client):
    client.force_login(User.objects.create_user('astro', password=PASSWORD))
    return client


@pytest.fixture
def staff_client():
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create_user('pi', password=PASSWORD, is_staff=True))
    return client


@pytest.mark.parametrize('strategy', ['READ_ONLY', 'LOCKED'])
@pytest.mark.parametrize('url', ['/jobs/', '/jobs/save_data/', '/jobs/requests/1/'])
def test_anonymous_users_get_the_login_page(client, jobs, settings, strategy, url):
    settings.AUTH_STRATEGY = strategy

    response = client.get(url)

    assert response.status_code == 302
    assert response['Location'].startswith('/accounts/login/')


def test_anonymous_api_requests_are_refused(client, jobs):
    assert client.get('/api/jobs/').status_code in (401, 403)
    assert client.post('/api/jobs/save_data/run/').status_code in (401, 403)
    assert not JobRequest.objects.exists()


def test_the_navigation_bar_has_jobs_for_logged_in_users_only(client, user_client):
    assert 'id="nav-jobs"' in user_client.get('/').content.decode()
    assert 'id="nav-jobs"' not in Client().get('/').content.decode()


def test_the_list_shows_each_job_with_its_schedule_next_runs_and_last_run(staff_client, jobs):
    page = staff_client.get('/jobs/').content.decode()

    assert '<code>*/15 * * * *</code>' in page and 'Every 15 minutes' in page
    assert '<code>5 * * * *</code>' in page and 'At 5 minutes past the hour' in page
    next_hour = timezone.localtime(timezone.now()).replace(minute=5, second=0, microsecond=0)
    if next_hour <= timezone.localtime(timezone.now()):
        next_hour += timedelta(hours=1)
    for hours in range(3):
        assert f'{next_hour + timedelta(hours=hours):%Y-%m-%d %H:%M:%S}' in page
    assert 'done: 3 record(s) checked, 1 failure(s)' in page
    assert 'FAILING</span>' in page


def test_overdue_jobs_are_named_at_the_top(user_client, jobs):
    page = user_client.get('/jobs/').content.decode()

    assert 'id="jobs-overdue"' in page
    overdue = page.split('id="jobs-overdue"')[1].split('</div>')[0]
    assert '2 jobs overdue:' in overdue and 'update_statuses, due' in overdue and 'save_data, due' in overdue
    assert page.count('OVERDUE</span>') == 2


def test_a_rejected_edit_is_shown_with_the_schedule_still_running(user_client, jobs):
    schedule.record_rejection(CRONTAB + 'oops\n', "bad crontab line: 'oops' (use -debug for details)")

    page = user_client.get('/jobs/').content.decode()

    assert 'A crontab edit was rejected' in page and 'Bad line: <code>oops</code>' in page
    assert 'the schedule below keeps running' in page and 'data-job="save_data"' in page


def test_a_job_page_lists_its_runs_with_their_output_and_a_chart(staff_client, jobs):
    page = staff_client.get('/jobs/save_data/').content.decode()

    assert '<td><span class="outcome outcome-failed">failed</span></td>' in page
    assert 'FAILED observation 42 (LCORedirect): HTTP 500' in page  # its output tail
    assert 'done: 3 record(s) checked, 1 failure(s)' in page  # its summary
    assert 'class="plotly-graph-div"' in page and '/static/plotly/plotly.min.js' in page
    assert staff_client.get('/jobs/no_such_job/').status_code == 404


def test_users_who_are_not_staff_see_names_times_and_outcomes_but_no_output(user_client, jobs):
    """What a job printed can name private targets and files: staff only, on every page and in
    the JSON view (a task's arguments too)."""
    from django_tasks.backends.database.models import DBTaskResult

    DBTaskResult.objects.create(task_path='tom_dataproducts.tasks.atlas_query', queue_name='default',
                                backend_name='default', priority=0,
                                args_kwargs={'args': ['SN 2026secret'], 'kwargs': {}})
    pages = [user_client.get(url).content.decode() for url in ('/jobs/', '/jobs/save_data/')]
    api = user_client.get('/api/jobs/').content.decode()

    for text in [*pages, api]:
        assert 'save_data' in text and 'failed' in text
        assert 'FAILED observation 42' not in text and 'record(s) checked' not in text
        assert 'SN 2026secret' not in text
    assert 'id="run-now-button"' not in pages[1]


def test_runs_are_paginated_newest_first(user_client, jobs):
    save_data = spec_from_words(['save_data'])
    for _ in range(25):
        history.finish(history.start(save_data, JobRun.Trigger.SCHEDULE), JobRun.Outcome.SUCCEEDED, 0)

    first = user_client.get('/jobs/save_data/').content.decode()
    second = user_client.get('/jobs/save_data/?page=2').content.decode()

    assert 'page 1 of 2' in first and first.count('<tr class="run-') == 20
    assert second.count('<tr class="run-') == 6 and 'outcome-failed' in second


def test_users_who_are_not_staff_may_not_run_now(user_client, jobs):
    assert user_client.post('/api/jobs/save_data/run/').status_code == 403
    assert not JobRequest.objects.exists()


def test_staff_run_now_with_the_csrf_token(staff_client, jobs):
    page = staff_client.get('/jobs/save_data/').content.decode()
    assert 'id="run-now-button"' in page
    token = staff_client.cookies['csrftoken'].value

    refused = staff_client.post('/api/jobs/save_data/run/', HTTP_HX_REQUEST='true')
    asked = staff_client.post('/api/jobs/save_data/run/', HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST='true')
    unknown = staff_client.post('/api/jobs/nothing/run/', HTTP_X_CSRFTOKEN=token, HTTP_HX_REQUEST='true')

    assert refused.status_code == 403
    assert asked.status_code == 202 and 'Run now: queued' in asked.content.decode()
    assert unknown.status_code == 404
    request = JobRequest.objects.get()
    assert (request.name, request.requested_by.username, request.picked_at) == ('save_data', 'pi', None)
    status = staff_client.get(f'/jobs/requests/{request.pk}/').content.decode()
    assert 'data-state="queued"' in status and 'hx-trigger="every 2s"' in status


def test_the_json_view_lists_the_jobs_for_a_token(jobs):
    token, _ = Token.objects.get_or_create(user=User.objects.create_user('script', password=PASSWORD))

    response = Client().get('/api/jobs/', HTTP_AUTHORIZATION=f'Token {token.key}')

    assert response.status_code == 200
    listing = response.json()
    assert [job['name'] for job in listing['jobs']] == ['update_statuses', 'save_data']
    save_data = listing['jobs'][1]
    assert save_data['schedule'] == '5 * * * *' and save_data['overdue'] is True and save_data['failing'] is True
    assert save_data['last_run']['outcome'] == 'failed' and save_data['last_success'] is None
    assert len(save_data['next_runs']) == 3
    assert Client().get('/api/jobs/', HTTP_AUTHORIZATION='Token wrong').status_code == 401


def test_the_toms_own_stylesheet_and_plotly_are_found():
    assert finders.find('tom_common/css/custom.css').endswith('mytom/static/tom_common/css/custom.css')
    assert finders.find('plotly/plotly.min.js')


def test_any_job_name_has_its_page(user_client):
    schedule.record_load("5 * * * * python manage.py jobs run --name 'nightly/save data' save_data\n")

    listing = user_client.get('/jobs/').content.decode()
    job = user_client.get('/jobs/nightly/save%20data/')

    assert 'href="/jobs/nightly/save%20data/"' in listing
    assert job.status_code == 200 and '<h1>nightly/save data</h1>' in job.content.decode()


def test_run_now_works_as_a_plain_form_too(staff_client, jobs):
    staff_client.get('/jobs/save_data/')
    token = staff_client.cookies['csrftoken'].value

    posted = staff_client.post('/api/jobs/save_data/run/', {'csrfmiddlewaretoken': token})

    request = JobRequest.objects.get()
    assert posted.status_code == 303 and posted['Location'] == f'/jobs/save_data/?request={request.pk}'
    page = staff_client.get(posted['Location']).content.decode()
    assert 'data-state="queued"' in page and f'hx-get="/jobs/requests/{request.pk}/"' in page
    assert staff_client.get('/jobs/save_data/?request=nonsense').status_code == 200


def test_a_run_whose_runner_is_gone_is_shown_lost_and_only_recorded_by_jobs_check(user_client, staff_client, jobs,
                                                                                   settings, tom_env):
    settings.METRICS_TOKEN = 'pages-metrics-token'
    gone = history.start(spec_from_words(['update_statuses']), JobRun.Trigger.SCHEDULE)
    JobRun.objects.filter(pk=gone.pk).update(heartbeat_at=timezone.now() - timedelta(minutes=5))

    listing = user_client.get('/jobs/').content.decode()
    page = staff_client.get('/jobs/update_statuses/').content.decode()
    api = user_client.get('/api/jobs/').json()
    metrics = user_client.get('/metrics', HTTP_AUTHORIZATION='Bearer pages-metrics-token')

    row = listing.split('data-job="update_statuses"')[1].split('</tr>')[0]
    assert 'lost' in row and 'FAILING' in row
    assert '<tr class="run-lost">' in page and 'the runner stopped without finishing' in page
    assert next(job for job in api['jobs'] if job['name'] == 'update_statuses')['last_run']['outcome'] == 'lost'
    assert metrics.status_code == 200
    assert JobRun.objects.get(pk=gone.pk).outcome == 'running'  # seen lost, nothing written

    check = run_job(tom_env, 'jobs', 'check')  # (the fixture's jobs are overdue: it exits 1)
    assert 'OVERDUE update_statuses' in check.stderr
    assert JobRun.objects.get(pk=gone.pk).outcome == 'lost'
