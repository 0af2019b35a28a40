"""The cron container's start script with the real supercronic, without Docker: jobs run
against this checkout on the test database, and crontab edits are checked and loaded live."""
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, make_record, make_target, save_as_editors_do, tool

EVERY_SECOND = '* * * * * * * '  # seconds, then the usual five, then the year
PYTHON_MANAGE = '/app/.venv/bin/python /app/manage.py'


class Cron:
    """docker/start-cron.sh running CRONTAB from a temporary folder, its output in a file."""

    def __init__(self, env, directory):
        self.crontab = Path(directory) / 'crontab'
        self.output = Path(directory) / 'cron.log'
        self.env = {**env, 'APP_DIR': str(REPO), 'CRONTAB': str(self.crontab), 'CRONTAB_POLL_SECONDS': '1',
                    'PATH': f'{Path(tool("supercronic")).parent}{os.pathsep}{env["PATH"]}'}
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
        deadline = time.monotonic() + seconds
        while self.log().count(text) < count:
            assert self.process.poll() is None, f'start-cron.sh exited:\n{self.log()}'
            assert time.monotonic() < deadline, f'no {text!r} within {seconds} s:\n{self.log()}'
            time.sleep(0.2)

    def stop(self):
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def cron(tom_env, tmp_path):
    runner = Cron(tom_env, tmp_path)
    yield runner
    if runner.process and runner.process.poll() is None:
        runner.process.kill()
        runner.process.wait()


def test_jobs_run_and_their_output_and_failures_are_logged_with_their_command(cron, lco):
    lco.add_request(7001)
    make_record(make_target(), 7001)
    cron.start(f'{EVERY_SECOND}{PYTHON_MANAGE} save_data\n'
               f'{EVERY_SECOND}{PYTHON_MANAGE} save_data --target_id 999999\n')

    cron.wait_for('msg="job succeeded"')
    cron.wait_for('msg="error running command: exit status 1"')
    assert cron.stop() == 0

    lines = cron.log().splitlines()
    good = f'job.command="{REPO}/.venv/bin/python {REPO}/manage.py save_data"'
    bad = f'job.command="{REPO}/.venv/bin/python {REPO}/manage.py save_data --target_id 999999"'
    assert any('done: 1 record(s) checked, downloaded 2 product(s)' in line and 'channel=stdout' in line
               and good in line for line in lines)
    assert any('msg="job succeeded"' in line and good in line for line in lines)
    assert any("no target with id '999999'" in line and 'channel=stderr' in line and bad in line for line in lines)
    assert any('level=error msg="error running command: exit status 1"' in line and bad in line for line in lines)


def test_edits_load_live_and_a_bad_edit_leaves_the_schedule_running(cron):
    cron.start(f'{EVERY_SECOND}echo first\n')
    cron.wait_for('msg=first')

    cron.save(f'{EVERY_SECOND}echo second\n')
    cron.wait_for('changed: new schedule loaded')
    cron.wait_for('msg=second')

    cron.save(f'{EVERY_SECOND}echo second\nthis is not a cron line\n')
    cron.wait_for('change rejected')
    seen = cron.log().count('msg=second')
    cron.wait_for('msg=second', count=seen + 2)

    rejection = next(line for line in cron.log().splitlines() if 'change rejected' in line)
    assert "bad crontab line: 'this is not a cron line'" in rejection
    assert cron.stop() == 0


def test_a_bad_crontab_at_start_is_refused_naming_the_line(cron):
    cron.start(f'{EVERY_SECOND}echo fine\nat noon run the backup\n')

    assert cron.process.wait(timeout=30) == 1
    assert "is not a valid crontab: bad crontab line: 'at noon run the backup'" in cron.log()
