"""The cron program's state file and the container's health check that reads it, without
Django: a silent program or an unchecked state is unhealthy, the verdict of `jobs check`
otherwise. (The program writing it is tested in test_cron_runner.py.)"""
import subprocess
import sys
import time

from myapp.sidecar import health_file
from tests.conftest import REPO

OVERDUE = 'OVERDUE save_data (5 * * * *): last success never; due ...'


def test_the_verdict_of_the_last_check_while_the_program_is_heard_from(tmp_path):
    state = tmp_path / 'health.json'
    health_file.write(state, time.time(), [], 'ok: 7 job(s) on time')
    assert health_file.verdict(state) == (True, ['ok: 7 job(s) on time'])

    health_file.write(state, time.time(), [OVERDUE], '1 job(s) overdue, 0 crontab problem(s)')
    assert health_file.verdict(state) == (False, [OVERDUE, '1 job(s) overdue, 0 crontab problem(s)'])


def test_a_silent_program_or_a_stale_check_is_unhealthy(tmp_path):
    state = tmp_path / 'health.json'
    checked = time.time()
    health_file.write(state, checked, [], 'ok: 7 job(s) on time')

    healthy, lines = health_file.verdict(state, now=time.time() + health_file.HEARTBEAT_STALE_AFTER + 5)
    assert not healthy and lines[0].startswith('the cron program (pid ') and 'not been heard from for 6' in lines[0]

    health_file.write(state, checked - health_file.CHECK_STALE_AFTER - 10, [], 'ok: 7 job(s) on time',
                      error='database error: connection refused')
    healthy, lines = health_file.verdict(state)
    assert not healthy
    assert lines == ['the cron program last checked the jobs 100 s ago: database error: connection refused']

    health_file.write(state, None, [], '')
    assert health_file.verdict(state) == (False, ['the cron program has not checked the jobs yet'])
    assert not health_file.verdict(tmp_path / 'missing.json')[0]


def test_the_health_check_reads_it_in_a_python_without_site_packages(tmp_path):
    state = tmp_path / 'health.json'
    env = {'CRON_HEALTH_FILE': str(state), 'PATH': '/usr/bin:/bin'}
    check = [sys.executable, '-I', '-S', str(REPO / 'docker' / 'healthcheck.py'), 'cron']

    health_file.write(state, time.time(), [OVERDUE], '1 job(s) overdue, 0 crontab problem(s)')
    unhealthy = subprocess.run(check, env=env, capture_output=True, text=True)
    health_file.write(state, time.time(), [], 'ok: 7 job(s) on time')
    healthy = subprocess.run(check, env=env, capture_output=True, text=True)

    assert (unhealthy.returncode, unhealthy.stderr) == (1, f'{OVERDUE}\n1 job(s) overdue, 0 crontab problem(s)\n')
    assert (healthy.returncode, healthy.stdout) == (0, 'ok: 7 job(s) on time\n')
