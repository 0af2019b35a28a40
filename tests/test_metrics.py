"""/metrics: the job history in Prometheus' format, behind METRICS_TOKEN, read by
prometheus_client's own parser."""
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from myapp.jobs import history, schedule
from myapp.jobs.options import spec_from_words
from myapp.models import JobRun, ScheduledJob

pytestmark = pytest.mark.django_db
TOKEN = 'metrics-token-for-tests'


@pytest.fixture
def token(settings):
    settings.METRICS_TOKEN = TOKEN


def samples(response):
    found = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def test_not_served_without_a_token_set(client, settings):
    settings.METRICS_TOKEN = ''

    assert client.get('/metrics', HTTP_AUTHORIZATION='Bearer anything').status_code == 404


def test_a_scraper_must_bear_the_token(client, token, settings):
    settings.AUTH_STRATEGY = 'LOCKED'

    assert client.get('/metrics').status_code == 401
    assert client.get('/metrics', HTTP_AUTHORIZATION='Bearer wrong').status_code == 401
    assert client.get('/metrics', HTTP_AUTHORIZATION=f'Bearer {TOKEN}').status_code == 200


def test_metrics_come_from_the_history(client, token):
    schedule.record_load('5 * * * * python manage.py jobs run save_data\n'
                         '*/15 * * * * python manage.py jobs run update_statuses\n')
    ScheduledJob.objects.update(first_seen=timezone.now() - timedelta(days=1))
    save_data = spec_from_words(['save_data'])
    good = history.finish(history.start(save_data, JobRun.Trigger.SCHEDULE), JobRun.Outcome.SUCCEEDED, 0)
    bad = history.finish(history.start(save_data, JobRun.Trigger.SCHEDULE), JobRun.Outcome.FAILED, 1)
    history.skip(save_data, JobRun.Trigger.SCHEDULE, 'skipped: busy')

    response = client.get('/metrics', HTTP_AUTHORIZATION=f'Bearer {TOKEN}')

    assert response.status_code == 200
    found = samples(response)
    job = (('job', 'save_data'),)
    assert found[('tom_job_last_success_timestamp_seconds', job)] == good.started_at.timestamp()
    assert found[('tom_job_last_run_timestamp_seconds', job)] == bad.started_at.timestamp()
    assert found[('tom_job_last_duration_seconds', job)] == pytest.approx(bad.duration)
    assert found[('tom_job_overdue', job)] == 0
    assert found[('tom_job_overdue', (('job', 'update_statuses'),))] == 1  # never ran in a day
    for outcome, total in (('succeeded', 1), ('failed', 1), ('skipped', 1)):
        assert found[('tom_job_runs_total', (('job', 'save_data'), ('outcome', outcome)))] == total


def test_counters_survive_pruning_the_history(client, token):
    schedule.record_load('5 * * * * python manage.py jobs run save_data\n')
    run = history.finish(history.start(spec_from_words(['save_data']), JobRun.Trigger.SCHEDULE),
                         JobRun.Outcome.SUCCEEDED, 0)
    JobRun.objects.filter(pk=run.pk).update(started_at=timezone.now() - timedelta(days=100))

    assert history.prune(days=90) == 1
    found = samples(client.get('/metrics', HTTP_AUTHORIZATION=f'Bearer {TOKEN}'))

    assert found[('tom_job_runs_total', (('job', 'save_data'), ('outcome', 'succeeded')))] == 1
