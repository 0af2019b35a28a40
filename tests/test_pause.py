"""Pausing a job (`jobs pause`, `jobs resume`, Pause and Resume on its page): its scheduled
runs are skipped naming the pause and exit 0, `jobs check` stays green and lists it, Run now
and runs by hand still run it, and the pause ends by itself at its end time."""
from datetime import timedelta

from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone

from myapp.jobs import schedule
from myapp.models import JobPause, JobRun, ScheduledJob
from tests.conftest import run_job

EVERY_MINUTE = '* * * * * python manage.py jobs run --grace 1m --name sessions clearsessions\n'


def overdue_by_now():
    """As if the job had been scheduled for half an hour without running."""
    ScheduledJob.objects.update(first_seen=timezone.now() - timedelta(minutes=30))


def scheduled_run(env):
    """A run as supercronic starts it."""
    return run_job({**env, 'TOM_JOBS_TRIGGER': 'schedule'}, 'jobs', 'run', '--grace', '1m', '--name', 'sessions',
                   'clearsessions')


def test_a_paused_job_skips_its_scheduled_runs_and_is_not_overdue_until_resumed(tom_env):
    schedule.record_load(EVERY_MINUTE)
    overdue_by_now()
    assert run_job(tom_env, 'jobs', 'check').returncode == 1

    paused = run_job(tom_env, 'jobs', 'pause', 'sessions', '--for', '2h', '--reason', 'LCO archive downtime')

    assert paused.returncode == 0, paused.stderr
    assert paused.stdout.startswith('jobs: sessions paused by ') and paused.stdout.rstrip().endswith(
        'LCO archive downtime')
    skipped = scheduled_run(tom_env)
    assert skipped.returncode == 0
    run = JobRun.objects.get(name='sessions')
    assert run.outcome == 'skipped' and run.summary.startswith('skipped: paused by ')
    assert ' until ' in run.summary and run.summary.endswith(': LCO archive downtime')
    check = run_job(tom_env, 'jobs', 'check')
    assert check.returncode == 0, check.stderr
    assert check.stdout.startswith('PAUSED sessions: paused by ')
    assert 'PAUSED' in run_job(tom_env, 'jobs', 'list').stdout
    by_hand = run_job(tom_env, 'jobs', 'run', '--name', 'sessions', 'clearsessions')
    assert by_hand.returncode == 0 and JobRun.objects.filter(name='sessions', outcome='succeeded').count() == 1

    resumed = run_job(tom_env, 'jobs', 'resume', 'sessions')

    assert resumed.returncode == 0 and resumed.stdout.strip() == 'jobs: sessions resumed'
    # Due again at its first time after the pause, not overdue at once for the time it was paused.
    JobRun.objects.filter(outcome='succeeded').delete()
    assert run_job(tom_env, 'jobs', 'check').returncode == 0
    assert scheduled_run(tom_env).returncode == 0
    assert JobRun.objects.filter(name='sessions', trigger='schedule', outcome='succeeded').count() == 1
    assert JobPause.objects.get(name='sessions').resumed_by != ''


def test_a_pause_ends_by_itself_at_its_end_time(tom_env):
    schedule.record_load(EVERY_MINUTE)
    assert run_job(tom_env, 'jobs', 'pause', 'sessions', '--for', '1h').returncode == 0
    JobPause.objects.update(until=timezone.now() - timedelta(seconds=1))

    assert scheduled_run(tom_env).returncode == 0

    assert JobRun.objects.get(name='sessions').outcome == 'succeeded'
    assert 'PAUSED' not in run_job(tom_env, 'jobs', 'check').stdout


def test_bad_pauses_are_one_line_and_change_nothing(tom_env):
    schedule.record_load(EVERY_MINUTE)

    for args, message in [
        (['pause', 'nosuch'], "CommandError: the running crontab has no job 'nosuch' (see `jobs list`)"),
        (['pause', 'sessions', '--for', 'soon'], "CommandError: --for/--until: 'soon' is not a duration"),
        (['pause', 'sessions', '--until', '2001-01-01 00:00'], 'CommandError: --until 2001-01-01 00:00 has passed'),
        (['resume', 'sessions'], 'CommandError: sessions is not paused'),
    ]:
        result = run_job(tom_env, 'jobs', *args)
        assert result.returncode == 1 and result.stderr.startswith(message), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1

    assert not JobPause.objects.exists()


def test_staff_pause_and_resume_from_the_jobs_pages(transactional_db):
    schedule.record_load(EVERY_MINUTE)
    staff, reader = Client(), Client()
    staff.force_login(User.objects.create_user('pi', password='x', is_staff=True))
    reader.force_login(User.objects.create_user('student', password='x'))

    assert reader.post('/api/jobs/sessions/pause/').status_code == 403
    assert staff.post('/api/jobs/nosuch/pause/', {'for': '1h'}).status_code == 404
    assert staff.post('/api/jobs/sessions/pause/', {'for': 'soon'}, content_type='application/json').status_code == 400
    # Malformed input: a pause past the calendar's end, a list, a reason the size of a file.
    for bad in ({'for': '99999999999999h'}, {'for': ['1h', '2h']}, {'for': '1h', 'reason': 'x' * 100_000}):
        refused = staff.post('/api/jobs/sessions/pause/', bad, content_type='application/json')
        assert refused.status_code == 400 and refused.json()['error'], bad
    assert not JobPause.objects.exists()

    answer = staff.post('/api/jobs/sessions/pause/', {'for': '3h', 'reason': 'dome closed'})

    assert answer.status_code == 303 and answer['Location'] == '/jobs/sessions/'
    page = staff.get('/jobs/sessions/').content.decode()
    assert 'id="job-paused"' in page and 'paused by pi at ' in page and 'dome closed' in page
    assert 'id="resume-button"' in page
    listed = staff.get('/api/jobs/').json()['jobs'][0]
    assert listed['paused'].startswith('paused by pi at ') and listed['paused'].endswith(': dome closed')
    assert 'PAUSED' in staff.get('/jobs/').content.decode()

    assert staff.post('/api/jobs/sessions/resume/', {'x': '1'}).status_code == 303
    assert staff.get('/api/jobs/').json()['jobs'][0]['paused'] is None
    assert staff.post('/api/jobs/sessions/resume/', content_type='application/json').status_code == 409
