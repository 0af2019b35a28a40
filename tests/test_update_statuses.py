"""`manage.py update_statuses` against the fake LCO portal: states are refreshed, failures named."""
from tom_observations.models import ObservationRecord

from tests.conftest import make_record, make_target, run_job


def test_unfinished_observations_get_their_state_from_the_portal(lco, tom_env):
    lco.add_request(8001, state='COMPLETED')
    record = make_record(make_target(), 8001, status='PENDING')

    job = run_job(tom_env, 'update_statuses')

    assert job.returncode == 0, job.stderr
    assert ObservationRecord.objects.get(pk=record.pk).status == 'COMPLETED'
    assert 'done: 0 failure(s)' in job.stdout


def test_an_observation_the_portal_cannot_answer_fails_the_job_by_name(lco, tom_env):
    lco.add_request(8101, state='COMPLETED')
    target = make_target()
    good = make_record(target, 8101, status='PENDING')
    make_record(target, 8102, status='PENDING')  # unknown to the portal: 404

    job = run_job(tom_env, 'update_statuses')

    assert job.returncode == 1
    assert ObservationRecord.objects.get(pk=good.pk).status == 'COMPLETED'
    failed = [line for line in job.stderr.splitlines() if line.startswith('FAILED')]
    assert len(failed) == 1 and failed[0].startswith('FAILED observation 8102 (LCORedirect): ')
    assert 'Traceback' not in job.stderr
