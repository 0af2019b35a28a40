"""`manage.py jobs run`, as cron runs it: real processes on the test database (SQLite, and
PostgreSQL in `tests/with_postgres.sh`), save_data against the fake LCO."""
import json
import os
import signal
from pathlib import Path

import pytest
from django.db import connection
from django.utils import timezone
from tom_dataproducts.models import DataProduct

from myapp.jobs import schedule
from myapp.jobs.locks import ADVISORY_NAMESPACE
from myapp.models import CrontabLoad, JobRun
from tests.conftest import make_record, make_target, run_job, start_job, stored_bytes, wait_for


def test_a_job_is_run_recorded_and_its_output_passed_through(lco, tom_env):
    lco.add_request(2001)
    make_record(make_target(), 2001)

    job = run_job(tom_env, 'jobs', 'run', 'save_data')

    assert job.returncode == 0, job.stderr
    run = JobRun.objects.get()
    lines = job.stdout.splitlines()
    assert lines[0].startswith(f'jobs: save_data run {run.pk} started on host {run.host}, pid {run.pid}, timeout 1h')
    assert any(line.startswith('done: 1 record(s) checked, downloaded 2 product(s)') for line in lines)
    assert lines[-1].startswith(f'jobs: save_data run {run.pk} succeeded in ')
    assert (run.name, run.command, run.outcome, run.exit_status, run.trigger) == (
        'save_data', 'save_data', 'succeeded', 0, 'manual')
    assert run.summary.startswith('done: 1 record(s) checked, downloaded 2 product(s)')
    assert run.summary in run.output_tail
    assert run.finished_at > run.started_at and run.duration > 0
    assert DataProduct.objects.count() == 2


def test_with_log_format_json_the_runtime_lines_are_json_with_their_fields(tom_env):
    job = run_job({**tom_env, 'LOG_FORMAT': 'json'}, 'jobs', 'run', '--name', 'broken', 'save_data', '--target_id', '9')

    assert job.returncode == 1
    run = JobRun.objects.get()
    started = json.loads(job.stdout.splitlines()[0])
    assert (started['level'], started['logger']) == ('INFO', 'tom.jobs')
    assert (started['job'], started['run']) == ('broken', run.pk)
    assert started['message'].startswith(f'jobs: broken run {run.pk} started on host ')
    assert "CommandError: no target with id '9'" in job.stderr.splitlines()   # the job's own line, as it wrote it
    ended = json.loads(job.stderr.splitlines()[-1])
    assert (ended['level'], ended['job'], ended['run'], ended['outcome'], ended['exit_status']) == (
        'ERROR', 'broken', run.pk, 'failed', 1)
    assert ended['duration'] == pytest.approx(run.duration) and 'time' in ended


def test_a_failing_job_exits_non_zero_and_is_recorded_as_failed(tom_env):
    job = run_job(tom_env, 'jobs', 'run', '--name', 'broken download', 'save_data', '--target_id', '999999')

    assert job.returncode == 1
    run = JobRun.objects.get()
    assert (run.name, run.command, run.outcome, run.exit_status) == (
        'broken download', 'save_data --target_id 999999', 'failed', 1)
    assert run.summary == "CommandError: no target with id '999999'"
    assert job.stderr.splitlines()[-1].startswith(
        f"jobs: broken download run {run.pk} failed in ")
    assert job.stderr.splitlines()[-1].endswith(", exit status 1: CommandError: no target with id '999999'")


def test_a_second_run_of_a_running_job_is_skipped_and_downloads_nothing(lco, tom_env):
    frames = lco.add_request(2101, frames=1, size=4096)
    make_record(make_target(), 2101)
    lco.fault('download', frames[0].id, 'gate')  # answers once the test opens the gate
    first = start_job({**tom_env, 'TOM_HTTP_TIMEOUT': '60'}, 'jobs', 'run', 'save_data')
    wait_for('the first run to start downloading', lambda: lco.count('download', frames[0].id))

    second = run_job(tom_env, 'jobs', 'run', 'save_data')
    lco.gate.set()
    out, err = first.communicate(timeout=120)

    assert second.returncode == 0, second.stderr
    assert first.returncode == 0, err
    running, skipped = JobRun.objects.order_by('started_at')
    assert second.stdout.strip() == (
        f'jobs: save_data skipped: run {running.pk} of save_data is running on host {running.host}, '
        f'pid {running.pid}, since {running.started_at:%Y-%m-%d %H:%M:%S} UTC')
    assert (running.outcome, skipped.outcome, skipped.exit_status) == ('succeeded', 'skipped', 0)
    assert lco.count('download', frames[0].id) == 1
    assert stored_bytes(tom_env, frames[0]) == frames[0].content()


def test_a_job_past_its_timeout_is_stopped_and_loses_nothing(lco, tom_env):
    frames = lco.add_request(2201, frames=2, size=64 * 1024)
    make_record(make_target(), 2201)
    lco.fault('download', frames[1].id, 'stall_after', 32 * 1024)
    env = {**tom_env, 'TOM_HTTP_TIMEOUT': '60'}

    job = run_job(env, 'jobs', 'run', '--timeout', '4s', 'save_data')

    assert job.returncode == 124
    run = JobRun.objects.get()
    assert (run.outcome, run.exit_status) == ('timed out', 124)
    assert f'jobs: save_data run {run.pk} passed its timeout of 4s: stopping it (SIGTERM)' in job.stderr
    assert 3.5 < run.duration < 30
    assert stored_bytes(tom_env, frames[0]) == frames[0].content()
    assert not DataProduct.objects.filter(product_id=str(frames[1].id)).exists()

    del lco.faults[('download', frames[1].id)]
    again = run_job(env, 'jobs', 'run', 'save_data')

    assert again.returncode == 0, again.stderr
    assert stored_bytes(tom_env, frames[1]) == frames[1].content()
    assert lco.count('download', frames[0].id) == 1
    assert list((Path(env['DATA_DIR']) / 'incoming').iterdir()) == []


def test_a_killed_runner_leaves_a_lost_run_that_blocks_nothing(lco, tom_env):
    frames = lco.add_request(2301, frames=1)
    make_record(make_target(), 2301)
    lco.fault('download', frames[0].id, 'stall')
    runner = start_job({**tom_env, 'TOM_HTTP_TIMEOUT': '60'}, 'jobs', 'run', 'save_data')
    wait_for('the download to start', lambda: lco.count('download', frames[0].id))

    os.kill(runner.pid, signal.SIGKILL)
    runner.wait()
    del lco.faults[('download', frames[0].id)]
    again = run_job(tom_env, 'jobs', 'run', 'save_data')

    assert again.returncode == 0, again.stderr
    assert '1 earlier run(s) whose runner died are now recorded as lost' in again.stderr
    lost, done = JobRun.objects.order_by('started_at')
    assert (lost.outcome, lost.pid) == ('lost', runner.pid)
    assert lost.summary.startswith('the runner stopped without finishing; last heard of at ')
    assert done.outcome == 'succeeded'
    assert stored_bytes(tom_env, frames[0]) == frames[0].content()


def test_a_scheduled_tick_already_run_elsewhere_is_skipped(tom_env):
    schedule.record_load('@hourly python manage.py jobs run --name sessions clearsessions\n')
    env = {**tom_env, 'TOM_JOBS_TRIGGER': 'schedule'}

    first = run_job(env, 'jobs', 'run', '--name', 'sessions', 'clearsessions')
    second = run_job(env, 'jobs', 'run', '--name', 'sessions', 'clearsessions')

    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    ran, skipped = JobRun.objects.order_by('started_at')
    assert ran.trigger == 'schedule' and ran.scheduled_for.minute == 0 and ran.scheduled_for.second == 0
    assert (skipped.outcome, skipped.scheduled_for) == ('skipped', ran.scheduled_for)
    assert f'skipped: run {ran.pk} on host {ran.host} already ran the ' in second.stdout


def test_a_scheduled_run_knows_its_tick_while_another_replica_loads_an_edit(tom_env):
    # This host's cron container runs the sessions line; a second replica has just loaded an
    # edit without it (each records the crontab it loads, one after the other).
    schedule.record_load('@hourly python manage.py jobs run --name sessions clearsessions\n')
    CrontabLoad.objects.create(loaded_at=timezone.now(), host='another-replica', accepted=True,
                               text='@daily python manage.py jobs run clearsessions\n')

    job = run_job({**tom_env, 'TOM_JOBS_TRIGGER': 'schedule'}, 'jobs', 'run', '--name', 'sessions', 'clearsessions')

    assert job.returncode == 0, job.stderr
    run = JobRun.objects.get()
    assert run.scheduled_for is not None and (run.scheduled_for.minute, run.scheduled_for.second) == (0, 0)


@pytest.mark.parametrize('args, message', [
    (['nosuch'], "CommandError: no management command 'nosuch'"),
    (['save_data', '--bogus'], 'CommandError: save_data: Error: unrecognized arguments: --bogus'),
    ([], 'CommandError: name the management command to run, e.g. `jobs run save_data`'),
    (['--timeout', 'soon', 'save_data'], "argument --timeout: 'soon' is not a duration"),
])
def test_bad_input_is_refused_in_a_line_and_nothing_is_recorded(tom_env, args, message):
    job = run_job(tom_env, 'jobs', 'run', *args)

    assert job.returncode == 2
    assert message in job.stderr.strip().splitlines()[-1]
    assert 'Traceback' not in job.stderr
    assert not JobRun.objects.exists()


def test_save_data_under_jobs_run_takes_one_lock_that_keeps_runs_by_hand_apart(lco, tom_env):
    frames = lco.add_request(2401, frames=1, size=4096)
    make_record(make_target(), 2401)
    lco.fault('download', frames[0].id, 'gate')
    first = start_job({**tom_env, 'TOM_HTTP_TIMEOUT': '60'}, 'jobs', 'run', '--name', 'fence', 'save_data')
    wait_for('the first run to start downloading', lambda: lco.count('download', frames[0].id))

    by_hand = run_job(tom_env, 'save_data')
    other_name = run_job(tom_env, 'jobs', 'run', 'save_data')
    held = locks_held(tom_env)
    lco.gate.set()
    out, err = first.communicate(timeout=120)

    assert first.returncode == 0, err
    assert by_hand.returncode == 0 and 'another save_data run holds the ' in by_hand.stdout, by_hand.stdout
    fence = JobRun.objects.get(name='fence')
    assert other_name.stdout.strip().startswith(f'jobs: save_data skipped: run {fence.pk} of fence is running ')
    assert lco.count('download', frames[0].id) == 1
    # One lock, the sync engine's, whatever the job's name.
    assert held == 1
    assert fence.lock == 'save_data'


def locks_held(env):
    """How many job locks are held now: advisory locks of ours on PostgreSQL, else lock files
    (a file lock leaves its file behind: count those of save_data's and of the job's name)."""
    if connection.vendor == 'postgresql':
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = %s AND "
                           "database = (SELECT oid FROM pg_database WHERE datname = current_database())",
                           [ADVISORY_NAMESPACE])
            return cursor.fetchone()[0]
    return len(list((Path(env['DATA_DIR']) / 'locks' / 'jobs').iterdir()))
