"""The Jobs list, /api/jobs/ and /metrics read every job in a fixed number of SQL queries:
a TOM with fifty jobs, each with a history, costs the database what one with five does."""
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.authtoken.models import Token

from myapp.jobs import history, pauses, schedule
from myapp.jobs.options import spec_from_words
from myapp.models import JobAlert, JobRun, ScheduledJob

pytestmark = pytest.mark.django_db
TOKEN = 'metrics-token-for-tests'


def schedule_of(count):
    """A crontab of count jobs, each with runs of every outcome, some paused, some alerted."""
    lines = [f'{minute % 60} * * * * python manage.py jobs run --name job{minute} --alert-after 2 clearsessions'
             for minute in range(count)]
    schedule.record_load('\n'.join(lines) + '\n')
    ScheduledJob.objects.update(first_seen=timezone.now() - timedelta(days=2))
    for number in range(count):
        spec = spec_from_words(['--name', f'job{number}', 'clearsessions'])
        for outcome in (JobRun.Outcome.SUCCEEDED, JobRun.Outcome.FAILED, JobRun.Outcome.TIMED_OUT):
            history.finish(history.start(spec, JobRun.Trigger.SCHEDULE), outcome, 0, summary='done: ok')
        history.skip(spec, JobRun.Trigger.SCHEDULE, 'skipped: paused')
        history.start(spec, JobRun.Trigger.MANUAL)  # running now
        if number % 3 == 0:
            pauses.pause(f'job{number}', 'pi', reason='mirror cleaning')
        if number % 4 == 0:
            JobAlert.objects.update_or_create(name=f'job{number}',
                                              defaults={'state': 'failing', 'changed_at': timezone.now()})


def queries(count, url, **headers):
    schedule_of(count)
    client = Client()
    client.force_login(User.objects.get_or_create(username='astro')[0])
    client.get(url, **headers)  # first use: sessions, content types and the like are cached
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, **headers)
    assert response.status_code == 200
    body = response.content.decode()
    assert f'job{count - 1}' in body, 'every job is shown'
    return len(captured)


@pytest.fixture
def headers(settings):
    settings.METRICS_TOKEN = TOKEN
    token, _ = Token.objects.get_or_create(user=User.objects.get_or_create(username='script')[0])
    return {'/jobs/': {}, '/api/jobs/': {'HTTP_AUTHORIZATION': f'Token {token.key}'},
            '/metrics': {'HTTP_AUTHORIZATION': f'Bearer {TOKEN}'}}


@pytest.mark.parametrize('url', ['/jobs/', '/api/jobs/', '/metrics'])
def test_the_queries_do_not_grow_with_the_number_of_jobs(url, headers):
    few = queries(5, url, **headers[url])
    JobRun.objects.all().delete()
    many = queries(50, url, **headers[url])

    assert many == few, f'{url}: {few} queries with 5 jobs, {many} with 50'
    assert few < 30
