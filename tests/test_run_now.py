"""Run now end to end: a request stored as the web page stores it, taken by a real `jobs
cron` process (the cron container's program), run by a real `jobs run`."""
import time

from django.contrib.auth.models import User

from myapp.jobs import run_now, schedule
from myapp.models import JobRequest, JobRun
from tests.conftest import WOKEN_WITHIN, wait_for

CRONTAB = '@daily python manage.py jobs run --name sessions --timeout 5m clearsessions\n'


def wait_for_state(request, states, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        request.refresh_from_db()
        state = run_now.state(request)
        if state in states:
            return state
        assert time.monotonic() < deadline, f'the request is still {state}'
        time.sleep(0.2)


def test_a_request_is_run_through_jobs_run_and_linked_to_its_run(cron_program):
    cron_program(CRONTAB)
    request = run_now.ask('sessions', User.objects.create_user('pi', is_staff=True))
    assert run_now.state(request) == 'queued'

    assert wait_for_state(request, {'succeeded', 'failed', 'not started'}) == 'succeeded'

    run = JobRun.objects.get()
    assert (run.name, run.command, run.trigger) == ('sessions', 'clearsessions', 'run now')
    assert request.run == run and request.picked_at is not None and request.host


def test_a_request_wakes_the_sleeping_program(cron_program):
    cron_program(CRONTAB)
    time.sleep(3)  # past its first look for requests at start: asleep until its next poll

    request = run_now.ask('sessions', User.objects.create_user('pi', is_staff=True))
    asked = time.monotonic()
    wait_for('the request to be taken', lambda: JobRequest.objects.get(pk=request.pk).picked_at, seconds=90)

    waited = time.monotonic() - asked
    assert waited < WOKEN_WITHIN, f'the request waited {waited:.1f} s to be taken'


def test_two_cron_containers_take_each_request_once(cron_program):
    cron_program(CRONTAB)
    cron_program(CRONTAB)
    user = User.objects.create_user('pi', is_staff=True)
    requests = [run_now.ask('sessions', user) for _ in range(3)]
    for request in requests:
        wait_for_state(request, {'succeeded', 'skipped', 'failed', 'not started'})

    assert JobRun.objects.count() == 3
    assert JobRequest.objects.filter(run=None).count() == 0
    assert len({request.run_id for request in JobRequest.objects.all()}) == 3


def test_a_job_not_in_the_running_crontab_cannot_be_asked_for(tom_env):
    schedule.record_load(CRONTAB)

    assert run_now.ask('save_data', User.objects.create_user('pi', is_staff=True)) is None
