"""`jobs check` (the overdue alarm), `jobs list` and catch-up, against a schedule recorded as
the cron container records it, with real `manage.py` processes on the test database."""
from datetime import timedelta

from django.utils import timezone

from myapp.jobs import catchup, schedule
from myapp.models import JobRun, ScheduledJob
from tests.conftest import run_job

EVERY_MINUTE = '* * * * * python manage.py jobs run --grace 1m --name sessions clearsessions\n'


def deployed_long_ago(minutes=30):
    """As if the crontab's jobs had been in a loaded crontab for a while."""
    ScheduledJob.objects.update(first_seen=timezone.now() - timedelta(minutes=minutes))


def test_a_new_deployment_is_on_time(tom_env):
    schedule.record_load(EVERY_MINUTE)

    check = run_job(tom_env, 'jobs', 'check')

    assert check.returncode == 0, check.stderr
    assert check.stdout.strip() == 'ok: 1 job(s) on time'


def test_a_job_that_missed_its_time_is_overdue_until_it_succeeds(tom_env):
    schedule.record_load(EVERY_MINUTE)
    deployed_long_ago()
    JobRun.objects.create(name='sessions', command='clearsessions', host='h', pid=1, outcome='failed',
                          started_at=timezone.now() - timedelta(minutes=5), summary='it broke', exit_status=1)

    late = run_job(tom_env, 'jobs', 'check')

    assert late.returncode == 1
    overdue = late.stderr.splitlines()[0]
    assert overdue.startswith('OVERDUE sessions (* * * * *): last success never; due ')
    assert '(grace 1m); last run failed at ' in overdue and overdue.endswith(': it broke')
    assert late.stderr.splitlines()[-1] == 'CommandError: 1 job(s) overdue, 0 crontab problem(s)'

    assert run_job(tom_env, 'jobs', 'run', '--name', 'sessions', 'clearsessions').returncode == 0
    again = run_job(tom_env, 'jobs', 'check')

    assert again.returncode == 0, again.stderr


def test_schedules_are_computed_in_every_form_supercronic_reads(tom_env):
    schedule.record_load(
        'CRON_TZ=America/Santiago\n'
        '*/10 * * * * * * python manage.py jobs run --name seconds clearsessions\n'
        '0 12 * * * 2030 python manage.py jobs run --name years clearsessions\n'
        '@daily python manage.py jobs run --name shorthand clearsessions\n')

    listing = run_job(tom_env, 'jobs', 'list')

    assert listing.returncode == 0, listing.stderr
    assert 'schedules in America/Santiago' in listing.stdout
    rows = {line.split()[0]: line for line in listing.stdout.splitlines()[2:]}
    assert set(rows) == {'seconds', 'years', 'shorthand'}
    assert '2030-01-01 15:00:00 UTC' in rows['years']  # 12:00 in Santiago (UTC-3 in January)
    assert ' 03:00:00 UTC' in rows['shorthand'] or ' 04:00:00 UTC' in rows['shorthand']


def test_lines_it_cannot_vouch_for_are_problems(tom_env):
    schedule.record_load(
        '5 * * * * python manage.py jobs run save_data\n'
        '6 * * * * python manage.py save_data\n'
        '7 * * * * python manage.py jobs run save_dta\n'
        '8 * * * * python manage.py jobs run save_data\n')

    check = run_job(tom_env, 'jobs', 'check')

    assert check.returncode == 1
    assert check.stderr.splitlines() == [
        'PROBLEM crontab line 2: does not run through `python manage.py jobs run`: its runs are not recorded '
        'or checked',
        "PROBLEM crontab line 3: no management command 'save_dta'",
        "PROBLEM crontab line 4: runs the job 'save_data' of line 1 again; give one of them its own --name",
        'CommandError: 0 job(s) overdue, 3 crontab problem(s)',
    ]


def test_no_recorded_schedule_is_unhealthy(tom_env):
    check = run_job(tom_env, 'jobs', 'check')

    assert check.returncode == 1
    assert check.stderr.strip() == ('CommandError: no crontab has been recorded: '
                                    'the cron container has not started yet')


def test_list_shows_next_run_last_run_and_last_success(tom_env):
    schedule.record_load(EVERY_MINUTE)
    assert run_job(tom_env, 'jobs', 'run', '--name', 'sessions', 'clearsessions').returncode == 0
    run = JobRun.objects.get()

    listing = run_job(tom_env, 'jobs', 'list')

    assert listing.returncode == 0, listing.stderr
    header, row = listing.stdout.splitlines()[1:3]
    assert header.split() == ['JOB', 'SCHEDULE', 'NEXT', 'RUN', 'LAST', 'RUN', 'LAST', 'SUCCESS']
    started = f'{run.started_at:%Y-%m-%d %H:%M:%S} UTC'
    assert row.startswith('sessions') and f'succeeded {started} ({run.duration:.1f} s)' in row
    assert row.endswith(started)


def test_catch_up_runs_a_missed_job_once(tom_env):
    schedule.record_load(
        '@hourly python manage.py jobs run --name missed clearsessions\n'
        '@hourly python manage.py jobs run --name opted-out --no-catch-up clearsessions\n')
    deployed_long_ago(minutes=5 * 60)  # five hourly runs missed: one catch-up
    schedule.record_load(
        '@hourly python manage.py jobs run --name missed clearsessions\n'
        '@hourly python manage.py jobs run --name opted-out --no-catch-up clearsessions\n'
        '@hourly python manage.py jobs run --name new clearsessions\n')

    due = catchup.missed()
    top_of_the_hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    assert [(line.name, tick) for line, tick in due] == [('missed', top_of_the_hour)]
    # As the cron container's program starts it, then a second time.
    line, tick = due[0]
    env = {**tom_env, 'TOM_JOBS_TRIGGER': 'catch-up', 'TOM_JOBS_TICK': tick.isoformat()}
    first = run_job(env, 'jobs', 'run', *line.spec.run_words())
    second = run_job(env, 'jobs', 'run', *line.spec.run_words())

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    run = JobRun.objects.get()
    assert (run.name, run.trigger, run.outcome, run.scheduled_for) == ('missed', 'catch-up', 'succeeded', tick)
    assert 'jobs: missed: no catch-up needed' in second.stdout
    assert catchup.missed() == []


def test_loaded_and_rejected_crontabs_are_recorded(tom_env, tmp_path):
    good, bad = tmp_path / 'good', tmp_path / 'bad'
    good.write_text(EVERY_MINUTE)
    bad.write_text(EVERY_MINUTE + 'not a line\n')

    loaded = run_job(tom_env, 'jobs', 'loaded', str(good))
    rejected = run_job(tom_env, 'jobs', 'rejected', str(bad), "bad crontab line: 'not a line' (use -debug)")

    assert loaded.returncode == 0 and rejected.returncode == 0, loaded.stderr + rejected.stderr
    load, crontab = schedule.current()
    assert load.text == EVERY_MINUTE and list(crontab.jobs()) == ['sessions']
    rejection = schedule.rejection_since(load)
    assert (rejection.bad_line, rejection.text) == ('not a line', EVERY_MINUTE + 'not a line\n')
    missing = run_job(tom_env, 'jobs', 'loaded', str(tmp_path / 'nowhere'))
    assert missing.returncode == 1 and missing.stderr.strip().endswith('No such file or directory')
