"""What `jobs run` is told about a job: its command, name, timeout, grace, catch-up, and
after how many failed runs in a row it is failing.

One parser serves the command line and the crontab, so that what `jobs check` reads from a
crontab line is what `jobs run` does with it."""
import argparse
import shlex
from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.management import get_commands, load_command_class
from django.core.management.base import CommandError, CommandParser

from myapp.timing import parse_duration

# Past its grace a job is overdue; by default the grace is its timeout and this much more.
GRACE_BEYOND_TIMEOUT = 60.0


@dataclass(frozen=True)
class JobSpec:
    argv: tuple          # the management command and its arguments
    name: str
    timeout: float       # seconds
    grace: float         # seconds
    catch_up: bool
    alert_after: int = 1  # failed runs in a row that make the job failing (its notification)

    @property
    def command(self):
        return self.argv[0]

    @property
    def command_line(self):
        return shlex.join(self.argv)

    def run_words(self):
        """The arguments of `jobs run` that run this job as its crontab line does."""
        return ['--name', self.name, '--timeout', f'{self.timeout:g}', '--grace', f'{self.grace:g}',
                '--alert-after', str(self.alert_after), *([] if self.catch_up else ['--no-catch-up']), *self.argv]


def duration_argument(text):
    try:
        return parse_duration(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error))


def positive_count(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f'{text!r} is not a count of runs (1 or more)')
    return int(text)


def add_run_arguments(parser):
    parser.add_argument('--name', help='the name of the job in its history (default: the command and its arguments)')
    parser.add_argument('--timeout', type=duration_argument, metavar='DURATION',
                        help='stop the job past this long (default JOB_TIMEOUT, 1h): SIGTERM, then SIGKILL')
    parser.add_argument('--grace', type=duration_argument, metavar='DURATION',
                        help='`jobs check` calls the job overdue this long after a run it missed '
                             '(default: its timeout plus a minute)')
    parser.add_argument('--alert-after', type=positive_count, default=1, metavar='N',
                        help='the job is failing (notified, flagged on the Jobs page) after N failed runs in a '
                             'row (default 1); one success clears it')
    parser.add_argument('--no-catch-up', dest='catch_up', action='store_false',
                        help='do not run the job when the cron container starts after missing its last run')
    parser.add_argument('argv', nargs=argparse.REMAINDER, metavar='COMMAND [ARG ...]',
                        help='the management command to run, and its arguments')


def spec_from_options(options):
    argv = tuple(options['argv'])
    if not argv or argv[0].startswith('-'):
        raise CommandError('name the management command to run, e.g. `jobs run save_data`', returncode=2)
    timeout = options['timeout'] or settings.JOB_TIMEOUT
    grace = options['grace'] or timeout + GRACE_BEYOND_TIMEOUT
    name = options['name'] or shlex.join(argv)
    return JobSpec(argv=argv, name=name, timeout=timeout, grace=grace, catch_up=options['catch_up'],
                   alert_after=options['alert_after'])


def spec_from_words(words):
    """The JobSpec of `jobs run WORDS...`; CommandError naming what is wrong."""
    parser = CommandParser(prog='jobs run', called_from_command_line=False)
    add_run_arguments(parser)
    return spec_from_options(vars(parser.parse_args(list(words))))


def check_command(argv):
    """CommandError naming what is wrong when argv is not a management command with arguments
    it accepts; jobs run refuses it before anything is recorded, jobs check reports it."""
    problem = _problem(tuple(argv))
    if problem:
        raise CommandError(problem, returncode=2)


@lru_cache(maxsize=256)
def _problem(argv):
    """What is wrong with argv, or None: once per process (the cron program checks every
    line every 30 s, and the commands a process knows do not change while it runs)."""
    try:
        _check(argv)
    except CommandError as error:
        return str(error)
    return None


def _check(argv):
    name, arguments = argv[0], list(argv[1:])
    commands = get_commands()
    if name not in commands:
        raise CommandError(f'no management command {name!r}', returncode=2)
    if name == 'jobs':
        raise CommandError('jobs cannot run itself', returncode=2)
    parser = load_command_class(commands[name], name).create_parser('manage.py', name)
    parser.called_from_command_line = False  # raise CommandError instead of exiting
    try:
        parser.parse_args(arguments)
    except CommandError as error:
        raise CommandError(f'{name}: {error}', returncode=2)
