"""Every line of ./crontab: a schedule supercronic reads as meant, run through `jobs run`,
and a real job with arguments it accepts."""
import subprocess

import pytest
from django.core.management.base import CommandError

from myapp.jobs.crontab import parse_crontab
from myapp.jobs.options import check_command
from tests.conftest import REPO, tool

CRONTAB = (REPO / 'crontab').read_text()


def problems(text):
    """Why the job lines of a crontab are wrong, or [] when they are right."""
    crontab = parse_crontab(text)
    found = [reason for _, reason in crontab.problems()]
    for line in crontab.jobs().values():
        fields = str(line.schedule).split()
        if len(fields) != 5:
            # supercronic reads 6 fields as 5 plus a YEAR and 7 as seconds plus 5 plus a year:
            # a production schedule keeps to the 5 everyone reads the same way.
            found.append(f'{len(fields)} schedule fields, not 5')
        if not line.command.startswith('python manage.py jobs run '):
            found.append('write jobs as `python manage.py jobs run ...`')
        try:
            check_command(line.spec.argv)
        except CommandError as error:
            found.append(str(error))
    return found


def test_supercronic_accepts_the_crontab():
    result = subprocess.run([tool('supercronic'), '-test', str(REPO / 'crontab')], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr
    assert 'crontab is valid' in result.stderr


def test_the_crontab_schedules_the_jobs_a_tom_needs():
    commands = {line.spec.command for line in parse_crontab(CRONTAB).jobs().values()}

    assert commands == {'update_statuses', 'save_data', 'run_cadence_strategies', 'run_saved_queries',
                        'clearsessions', 'prune_db_task_results', 'prune_job_history', 'backup'}


def test_every_job_line_is_a_valid_schedule_and_command():
    assert problems(CRONTAB) == []


def test_every_job_line_is_commented():
    lines = CRONTAB.splitlines()
    for line in parse_crontab(CRONTAB).lines:
        above = lines[:line.number - 1]
        block = above[len(above) - next((i for i, text in enumerate(reversed(above)) if not text.strip()), 0):]
        assert any(text.startswith('#') for text in block), f'line {line.number} has no comment above it'


@pytest.mark.django_db
@pytest.mark.parametrize('line, problem', [
    ('*/10 * * * * * python manage.py jobs run save_data', '6 schedule fields, not 5'),
    ('61 * * * * python manage.py jobs run save_data', 'cannot compute its schedule'),
    ('0 * * * * python manage.py jobs run save_dta', "no management command 'save_dta'"),
    ('0 * * * * python manage.py jobs run save_data --nonsense 3', 'save_data: Error: unrecognized'),
    ('0 * * * * python manage.py save_data', 'does not run through `python manage.py jobs run`'),
    ('0 * * * * /app/.venv/bin/python /app/manage.py jobs run save_data', 'write jobs as `python manage.py'),
    ('0 * * * * python manage.py jobs run --timeout soon save_data',
     "jobs run: Error: argument --timeout: 'soon' is not a duration"),
])
def test_the_checks_catch_what_they_are_for(line, problem):
    assert any(p.startswith(problem) for p in problems(line + '\n')), problems(line + '\n')
