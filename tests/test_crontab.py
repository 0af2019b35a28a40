"""Every line of ./crontab: a schedule supercronic reads as meant, and a real job."""
import shlex
import subprocess
from datetime import datetime

import pytest
from cronsim import CronSim, CronSimError
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError

from tests.conftest import REPO, tool

IMAGE_PYTHON = '/app/.venv/bin/python'
IMAGE_MANAGE = '/app/manage.py'


def jobs(text):
    """(line number, schedule fields, command) for each job line of a crontab."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith('#') or '=' in line.split()[0]:
            continue  # blank, comment, or an environment variable
        words = line.split()
        # The schedule is what comes before the command, which starts with an absolute path.
        split = next((i for i, word in enumerate(words) if word.startswith('/')), len(words))
        found.append((number, words[:split], ' '.join(words[split:])))
    return found


def problems(fields, command):
    """Why a job line is wrong, or [] when it is right."""
    found = []
    if len(fields) != 5:
        # supercronic reads 6 fields as 5 plus a YEAR and 7 as seconds plus 5 plus a year:
        # a production schedule keeps to the 5 everyone reads the same way.
        found.append(f'{len(fields)} schedule fields, not 5')
    else:
        try:
            CronSim(' '.join(fields), datetime(2026, 1, 1))
        except CronSimError as error:
            found.append(f'bad schedule: {error}')
    argv = shlex.split(command)
    if argv[:2] != [IMAGE_PYTHON, IMAGE_MANAGE] or len(argv) < 3:
        return found + [f'command must start with {IMAGE_PYTHON} {IMAGE_MANAGE} and name a command']
    name, arguments = argv[2], argv[3:]
    if name not in get_commands():
        return found + [f'no management command {name!r}']
    parser = load_command_class(get_commands()[name], name).create_parser('manage.py', name)
    try:
        parser.parse_args(arguments)
    except CommandError as error:
        found.append(f'{name}: {error}')
    return found


CRONTAB = (REPO / 'crontab').read_text()


def test_supercronic_accepts_the_crontab():
    result = subprocess.run([tool('supercronic'), '-test', str(REPO / 'crontab')], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert 'crontab is valid' in result.stderr


def test_the_crontab_schedules_the_jobs_a_tom_needs():
    commands = {shlex.split(command)[2] for _, _, command in jobs(CRONTAB)}

    assert {'save_data', 'update_statuses', 'runcadencestrategies', 'clearsessions',
            'prune_db_task_results'} <= commands


@pytest.mark.parametrize('number, fields, command', jobs(CRONTAB), ids=lambda v: str(v)[:40])
def test_every_job_line_is_a_valid_schedule_and_command(number, fields, command):
    assert problems(fields, command) == [], f'crontab line {number}'


@pytest.mark.parametrize('line, problem', [
    ('*/10 * * * * * /app/.venv/bin/python /app/manage.py save_data', '6 schedule fields, not 5'),
    ('61 * * * * /app/.venv/bin/python /app/manage.py save_data', 'bad schedule'),
    ('0 * * * * /app/.venv/bin/python /app/manage.py save_dta', "no management command 'save_dta'"),
    ('0 * * * * /app/.venv/bin/python /app/manage.py save_data --nonsense 3', 'save_data: Error: unrecognized'),
    ('0 * * * * python manage.py save_data', 'command must start with /app/.venv/bin/python'),
])
def test_the_checks_catch_what_they_are_for(line, problem):
    [(_, fields, command)] = jobs(line)

    assert any(p.startswith(problem) for p in problems(fields, command)), problems(fields, command)
