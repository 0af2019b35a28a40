"""What the Jobs page and its JSON view show: each job of the running schedule, in plain
words, with its next runs, last run, last success, and whether it is overdue or failing."""
from dataclasses import dataclass

from cron_descriptor import ExpressionDescriptor, FormatException, Options
from django.utils import timezone

from myapp.jobs import pauses, schedule
from myapp.jobs.crontab import SHORTHANDS
from myapp.overview import report as overview

NEXT_RUNS = 3


@dataclass
class JobRow:
    state: object               # overdue.Job
    description: str
    next_runs: list
    overdue: bool

    @property
    def name(self):
        return self.state.name

    @property
    def schedule(self):
        return str(self.state.line.schedule)

    @property
    def failing(self):
        return self.state.failing

    @property
    def paused(self):
        """How it is paused (`paused by pi at ... until ...: reason`), or ''."""
        return pauses.describe(self.state.pause) if self.state.pause else ''

    def as_dict(self):
        last, success = self.state.last_run, self.state.last_success
        return {
            'name': self.name, 'schedule': self.schedule, 'description': self.description,
            'timezone': str(self.state.line.schedule.zone), 'command': self.state.line.spec.command_line,
            'next_runs': [moment.isoformat() for moment in self.next_runs],
            'overdue': self.overdue, 'failing': self.failing, 'paused': self.paused or None,
            'due': self.state.due.isoformat() if self.state.due else None,
            'late_at': self.state.late_at.isoformat() if self.state.late_at else None,
            'last_run': _run(last), 'last_success': _run(success),
        }


@dataclass
class Board:
    load: object                # the CrontabLoad running, or None
    rejection: object           # the latest edit rejected since, or None
    rows: list
    problems: list              # (CrontabLine, reason)
    timezone: str               # of the schedules
    backup: object = None       # backups.status.BackupState

    @property
    def overdue(self):
        return [row for row in self.rows if row.overdue]

    @property
    def failing(self):
        return [row for row in self.rows if row.failing]


def board(now=None):
    report = overview.report(now=now, check_commands=False)
    rows = [JobRow(state, describe(str(state.line.schedule)), next_runs(state.line.schedule, report.now),
                   state.overdue(report.now)) for state in report.jobs]
    zone = report.crontab.timezone if report.crontab else 'UTC'
    return Board(report.load, schedule.rejection_since(report.load), rows, report.problems, zone, report.backup)


def describe(expression):
    """The schedule in plain words, e.g. `At 5 minutes past the hour`."""
    options = Options()
    options.use_24hour_time_format = True
    try:
        return ExpressionDescriptor(SHORTHANDS.get(expression, expression), options).get_description()
    except (FormatException, ValueError) as error:
        return f'({error})'


def next_runs(line_schedule, now, count=NEXT_RUNS):
    """The next count scheduled times after now, in the TOM's time zone."""
    found, moment = [], now
    while len(found) < count:
        moment = line_schedule.next_after(moment)
        if moment is None:
            break
        found.append(timezone.localtime(moment))
    return found


def _run(run):
    if run is None:
        return None
    return {
        'id': run.pk, 'outcome': run.outcome, 'started_at': run.started_at.isoformat(),
        'duration': run.duration, 'exit_status': run.exit_status, 'summary': run.summary, 'host': run.host,
    }
