"""Download data now, from a target's Jobs tab: `save_data --target_id N` run by a real `jobs
cron` process through `jobs run` against the fake LCO, this target's frames only; pressed while
another save_data holds the lock, it waits for it instead of being skipped."""
from django.contrib.auth.models import User
from django.test import Client

from myapp.jobs import run_now
from myapp.models import JobRequest, JobRun
from tests.conftest import make_record, make_target, start_job, wait_for

CRONTAB = '5 * * * * python manage.py jobs run --timeout 50m save_data\n'


def staff():
    client = Client()
    client.force_login(User.objects.create_user('pi', password='x', is_staff=True, is_superuser=True))
    return client


def ended(request):
    request.refresh_from_db()
    state = run_now.state(request)
    return state if state not in ('queued', 'starting', 'waiting', 'running') else None


def test_download_now_fetches_this_target_s_frames_only(lco, cron_program):
    ours, other = make_target('SN 2026ours'), make_target('SN 2026other')
    ours_frames = lco.add_request(7001)
    other_frames = lco.add_request(7002)
    make_record(ours, 7001)
    make_record(other, 7002)
    cron_program(CRONTAB)
    client = staff()

    tab = client.get(f'/targets/{ours.pk}/?tab=jobs').content.decode()
    assert 'id="download-now-button"' in tab and f'save_data --target_id {ours.pk}' in tab
    answer = client.post(f'/api/jobs/targets/{ours.pk}/download/', HTTP_HX_REQUEST='true')

    assert answer.status_code == 202 and 'Run now: queued' in answer.content.decode()
    request = JobRequest.objects.get()
    assert wait_for('the download to end', lambda: ended(request), 90) == 'succeeded'
    run = request.run
    assert (run.name, run.command, run.trigger) == ('save_data', f'save_data --target_id {ours.pk}', 'run now')
    assert (request.target, request.requested_by.username) == (ours, 'pi')
    assert all(lco.count('download', frame.id) == 1 for frame in ours_frames)
    assert all(lco.count('download', frame.id) == 0 for frame in other_frames)
    assert lco.count('frames', 7002) == 0
    assert 'succeeded' in client.get(f'/targets/{ours.pk}/?tab=jobs').content.decode()


def test_pressed_while_the_hourly_run_holds_the_lock_it_waits_for_it(lco, tom_env, cron_program):
    target = make_target()
    frames = lco.add_request(7101)
    make_record(target, 7101)
    lco.fault('download', frames[0].id, 'gate')  # the hourly run stalls on its first download
    hourly = start_job({**tom_env, 'TOM_JOBS_TRIGGER': 'schedule', 'TOM_HTTP_TIMEOUT': '120'},
                       'jobs', 'run', '--timeout', '50m', 'save_data')
    wait_for('the hourly run to hold the lock', lambda: lco.waiting_at_gate, 60)
    cron_program(CRONTAB)

    request = run_now.ask('save_data', User.objects.create_user('pi', is_staff=True), ['--target_id', str(target.pk)],
                          target)

    hourly_run = JobRun.objects.get(trigger='schedule')
    wait_for('the request to wait', lambda: request.refresh_from_db() or run_now.state(request) == 'waiting', 60)
    assert request.waiting.startswith(f'waiting for run {hourly_run.pk} of save_data, running since ')
    lco.gate.set()
    assert hourly.wait(timeout=60) == 0
    assert wait_for('the download to end', lambda: ended(request), 90) == 'succeeded'
    assert request.run.summary.startswith('done: 1 record(s) checked, downloaded 0 product(s)')
