"""The cron container's start script with the real supercronic, without Docker: jobs run
through `jobs run` against this checkout on the test database, the schedule is recorded,
missed jobs catch up at start, and crontab edits are checked and loaded live."""
import os
import re
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from myapp.jobs import run_now, schedule
from myapp.models import JobRun, ScheduledJob
from tests.conftest import REPO, cron_env, make_record, make_target, run_job, save_as_editors_do
from tests.fake_sentry import FakeSentry

EVERY_SECOND = '* * * * * * * '  # seconds, then the usual five, then the year
JOBS_RUN = 'python manage.py jobs run'


class Cron:
    """docker/start-cron.sh running CRONTAB from a temporary folder, its output in a file."""

    def __init__(self, env, directory):
        self.crontab = Path(directory) / 'crontab'
        self.output = Path(directory) / 'cron.log'
        self.env = cron_env(env, directory, self.crontab)
        self.health = Path(self.env['CRON_HEALTH_FILE'])
        self.process = None

    def start(self, text):
        self.crontab.write_text(text)
        with self.output.open('w') as out:
            self.process = subprocess.Popen([str(REPO / 'docker' / 'start-cron.sh')], env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT)
        return self

    def save(self, text):
        save_as_editors_do(self.crontab, text)

    def log(self):
        return self.output.read_text()

    def wait_for(self, text, seconds=60, count=1):
        wait_until(lambda: self.log().count(text) >= count, f'{text!r} in the log', seconds, self)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        status = self.process.wait(timeout=60)
        assert status == 0, self.log()
        return status


def wait_until(condition, what, seconds=60, cron=None):
    """Polls condition until it returns something true, and returns that."""
    deadline = time.monotonic() + seconds
    while not (found := condition()):
        if cron:
            assert cron.process.poll() is None, f'start-cron.sh exited:\n{cron.log()}'
        assert time.monotonic() < deadline, f'no {what} within {seconds} s' + (f':\n{cron.log()}' if cron else '')
        time.sleep(0.2)
    return found


@pytest.fixture
def cron(tom_env, tmp_path):
    runner = Cron(tom_env, tmp_path)
    yield runner
    if runner.process and runner.process.poll() is None:
        runner.process.kill()
        runner.process.wait()


def test_jobs_run_recorded_with_their_output_and_failures_logged_by_command(cron, lco):
    lco.add_request(7001)
    make_record(make_target(), 7001)
    good, bad = f'{JOBS_RUN} save_data', f'{JOBS_RUN} --name bad save_data --target_id 999999'
    cron.start(f'{EVERY_SECOND}{good}\n{EVERY_SECOND}{bad}\n')

    # The two share save_data's lock: a run that finds the other one running is skipped.
    cron.wait_for('done: 1 record(s) checked, downloaded 2 product(s)')
    cron.wait_for('msg="job succeeded"')
    cron.wait_for('msg="error running command: exit status 1"')
    assert cron.stop() == 0

    lines = cron.log().splitlines()
    assert any('done: 1 record(s) checked, downloaded 2 product(s)' in line and 'channel=stdout' in line
               and f'job.command="{good}"' in line for line in lines)
    assert any('msg="job succeeded"' in line and f'job.command="{good}"' in line for line in lines)
    assert any("no target with id '999999'" in line and 'channel=stderr' in line and f'job.command="{bad}"' in line
               for line in lines)
    assert any('level=error msg="error running command: exit status 1"' in line and f'job.command="{bad}"' in line
               for line in lines)
    succeeded = JobRun.objects.filter(name='save_data', outcome='succeeded').first()
    assert succeeded and succeeded.trigger == 'schedule' and succeeded.scheduled_for is not None
    assert JobRun.objects.filter(name='bad', outcome='failed', exit_status=1).exists()


def test_edits_load_live_are_recorded_and_a_bad_edit_leaves_the_schedule_running(cron):
    first = f'{EVERY_SECOND}echo first\n'
    cron.start(first)
    cron.wait_for('msg=first')
    wait_until(lambda: schedule.current()[0] and schedule.current()[0].text == first, 'the schedule recorded')

    second = f'{EVERY_SECOND}echo second\n'
    cron.save(second)
    cron.wait_for('changed: new schedule loaded')
    cron.wait_for('msg=second')
    wait_until(lambda: schedule.current()[0].text == second, 'the new schedule recorded')

    cron.save(second + 'this is not a cron line\n')
    cron.wait_for('change rejected')
    seen = cron.log().count('msg=second')
    cron.wait_for('msg=second', count=seen + 2)

    rejection = next(line for line in cron.log().splitlines() if 'change rejected' in line)
    assert "bad crontab line: 'this is not a cron line'" in rejection
    wait_until(lambda: schedule.rejection_since(schedule.current()[0]), 'the rejection recorded')
    assert schedule.rejection_since(schedule.current()[0]).bad_line == 'this is not a cron line'
    assert cron.stop() == 0


def test_a_missed_job_catches_up_once_at_start(cron):
    text = f'@hourly {JOBS_RUN} --name missed clearsessions\n'
    schedule.record_load(text)
    ScheduledJob.objects.update(first_seen=timezone.now() - timedelta(hours=3))

    cron.start(text)
    cron.wait_for('cron: catching up missed: its run of ')
    cron.wait_for('jobs: missed run ')
    wait_until(lambda: JobRun.objects.filter(outcome='succeeded').exists(), 'the catch-up run to end', cron=cron)
    assert cron.stop() == 0

    run = JobRun.objects.get()
    assert (run.name, run.trigger) == ('missed', 'catch-up')


def test_jobs_report_to_sentry_and_supercronic_does_not(cron):
    sentry = FakeSentry().start()
    try:
        cron.env['SENTRY_DSN'] = sentry.dsn
        cron.start(f'{EVERY_SECOND}{JOBS_RUN} --name bad save_data --target_id 999999\n')
        cron.wait_for('msg="error running command: exit status 1"')
        wait_until(lambda: sentry.of_type('event'), 'an event in Sentry', cron=cron)
        assert cron.stop() == 0
    finally:
        sentry.stop()

    assert sentry.of_type('event')[0]['message'] == "job bad failed: CommandError: no target with id '999999'"
    assert all(path.rstrip('/').endswith('/envelope') for path in sentry.paths), sentry.paths


def test_run_now_requests_are_served_in_the_cron_container(cron):
    cron.start(f'@daily {JOBS_RUN} --name sessions clearsessions\n')
    wait_until(lambda: schedule.current()[0] is not None, 'the schedule recorded', cron=cron)

    request = run_now.ask('sessions', None)
    wait_until(lambda: JobRun.objects.filter(outcome='succeeded').exists(), 'the requested run', cron=cron)
    cron.wait_for('cron: run now of sessions')
    assert cron.stop() == 0

    request.refresh_from_db()
    assert request.run.trigger == 'run now' and request.run.outcome == 'succeeded'


def test_a_bad_crontab_at_start_is_refused_naming_the_line(cron):
    cron.start(f'{EVERY_SECOND}echo fine\nat noon run the backup\n')

    assert cron.process.wait(timeout=30) == 1
    assert "is not a valid crontab: bad crontab line: 'at noon run the backup'" in cron.log()


def health_check(cron):
    return subprocess.run([sys.executable, '-I', '-S', str(REPO / 'docker' / 'healthcheck.py'), 'cron'],
                          env=cron.env, capture_output=True, text=True)


def test_its_health_is_the_verdict_of_jobs_check_read_without_django(cron, tom_env):
    # A yearly job that has missed its time since it entered the schedule, and a daily one.
    ScheduledJob.objects.create(name='yearly', first_seen=timezone.now() - timedelta(days=400))
    cron.start(f'0 0 1 1 * {JOBS_RUN} --no-catch-up --grace 1m --name yearly clearsessions\n'
               f'@daily {JOBS_RUN} --name daily clearsessions\n')
    wait_until(lambda: cron.health.exists() and health_check(cron).returncode == 1, 'an unhealthy check', cron=cron)

    unhealthy = health_check(cron)
    check = run_job(tom_env, 'jobs', 'check')
    assert unhealthy.stderr.startswith('OVERDUE yearly (0 0 1 1 *): last success never; due ')
    same_time = lambda lines: [re.sub(r'late by \S+', 'late by ...', line) for line in lines]  # noqa: E731
    assert same_time(unhealthy.stderr.splitlines()) == same_time(
        [*check.stderr.splitlines()[:-1], '1 job(s) overdue, 0 crontab problem(s)'])

    cron.save(f'@daily {JOBS_RUN} --name daily clearsessions\n')
    wait_until(lambda: health_check(cron).returncode == 0, 'a healthy check once the edit is loaded', 90, cron)
    assert health_check(cron).stdout == 'ok: 1 job(s) on time\n'
    cron.stop()
    assert not cron.health.exists()


def test_supercronic_is_started_again_should_it_die(cron):
    cron.start(f'{EVERY_SECOND}echo tick\n')
    cron.wait_for('msg=tick')
    supercronic = children(cron.process.pid, 'supercronic')
    assert len(supercronic) == 1

    os.kill(supercronic[0], signal.SIGKILL)
    cron.wait_for('cron: supercronic exited unexpectedly (killed by SIGKILL); starting it again in 1 s')
    seen = cron.log().count('msg=tick')
    cron.wait_for('msg=tick', count=seen + 2)
    assert children(cron.process.pid, 'supercronic') != supercronic
    cron.stop()


def test_orphans_are_reaped_and_a_stop_waits_for_running_jobs(cron, tmp_path):
    # The first run leaves a process behind that outlives it by seconds; every run takes 2 s.
    marker, job = tmp_path / 'orphan-started', tmp_path / 'job.py'
    job.write_text('import os, subprocess, time\n'
                   f'if not os.path.exists({str(marker)!r}):\n'
                   f'    open({str(marker)!r}, "w").close()\n'
                   '    subprocess.Popen(["sleep", "8"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n'
                   'time.sleep(2)\n')
    cron.start(f'{EVERY_SECOND}{JOBS_RUN} --name slow shell -c "exec(open(\'{job}\').read())"\n')
    wait_until(lambda: JobRun.objects.filter(name='slow', outcome='succeeded').exists(), 'a run to end', cron=cron)
    # Its runner gone, the orphan is handed to the program (a child subreaper), which reaps it.
    orphan = wait_until(lambda: children(cron.process.pid, 'sleep'), 'the orphan handed over', cron=cron)
    wait_until(lambda: not Path(f'/proc/{orphan[0]}').exists(), 'the orphan reaped', cron=cron)

    running = wait_until(lambda: JobRun.objects.filter(name='slow', outcome='running').first(), 'a run under way',
                         cron=cron)
    cron.process.send_signal(signal.SIGTERM)
    assert cron.process.wait(timeout=60) == 0
    running.refresh_from_db()
    assert running.outcome == 'succeeded'
    assert 'cron: SIGTERM: stopping; waiting for what runs: supercronic' in cron.log()
    assert cron.log().rstrip().endswith('cron: every job has ended; stopped')


def children(pid, name=None):
    """The pids of the process's children (named name)."""
    found = []
    for task in Path(f'/proc/{pid}/task').iterdir():
        for child in (task / 'children').read_text().split():
            try:
                comm = Path(f'/proc/{child}/comm').read_text().strip()
            except OSError:
                continue
            if name is None or comm == name:
                found.append(int(child))
    return found


def wakeups(pid):
    """How often the process has gone to sleep and been woken (voluntary context switches)."""
    status = Path(f'/proc/{pid}/status').read_text()
    return int(re.search(r'^voluntary_ctxt_switches:\s+(\d+)', status, re.MULTILINE).group(1))


@pytest.mark.skipif(not Path('/proc/self/status').exists(), reason='reads /proc')
def test_while_nothing_is_due_the_program_sleeps(cron):
    # Nothing due but its own chores: the crontab looked at every 5 s, the health file's
    # heartbeat every 10 s, Run now and tasks looked for every 5 s (SQLite has no NOTIFY).
    cron.env['CRONTAB_POLL_SECONDS'] = '5'
    cron.start(f'@yearly {JOBS_RUN} --no-catch-up clearsessions\n')
    cron.wait_for('edits are checked and loaded live')
    time.sleep(3)  # past its start (supercronic started, the first health check made)

    before = wakeups(cron.process.pid)
    time.sleep(20)
    woke = wakeups(cron.process.pid) - before

    # Twice a second is 40 (the loop before this design); its chores, about 5 (they coincide).
    assert woke <= 16, f'the cron program woke {woke} times in 20 s'
    cron.stop()
