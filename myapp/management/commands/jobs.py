"""`manage.py jobs`: the job runtime's command line.

  jobs run [--name N] [--timeout D] [--grace D] [--no-catch-up] COMMAND [ARG ...]
  jobs check        exit 1 naming each overdue job (the cron container's health has the same verdict)
  jobs pause NAME [--for D | --until TIME] [--reason TEXT], jobs resume NAME
  jobs notify [--test]   send the notifications due (the cron container and `jobs check` do)
  jobs list         the schedule, with each job's next run, last run and last success

and `jobs cron`, the cron container's program (myapp/sidecar): supercronic on the crontab,
live edits, catch-up, Run now, and the state its health check reads. `jobs loaded FILE`
records a crontab as running (Kubernetes' migration hook does); `jobs rejected FILE REASON`
records an edit refused; `jobs export --kubernetes` writes the crontab's jobs for the Helm
chart under deploy/.
"""
import getpass
import os
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from myapp.jobs import alerts, kubernetes, notify, overdue, pauses, runner, schedule
from myapp.jobs.handshake import BadHandshake, Handshake
from myapp.jobs.options import add_run_arguments, check_command, spec_from_options
from myapp.logs import Say
from myapp.overview import report as overview
from myapp.sidecar.program import Program
from myapp.streams import state as stream_state
from myapp.task_queue import queue, results, sentry
from myapp.timing import format_local, parse_duration


class Command(BaseCommand):
    help = 'Runs a management command as a job (locked, bounded, recorded), and checks and lists the schedule.'
    requires_system_checks = []

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(dest='subcommand', required=True, metavar='SUBCOMMAND')
        run = subcommands.add_parser('run', help='run a management command as a job',
                                     description='Runs COMMAND as a job: one run at a time, stopped past its '
                                                 'timeout, recorded in the history, reported to Sentry.')
        add_run_arguments(run)
        subcommands.add_parser('check', help='exit 1 naming each overdue job, 0 when none is')
        pause = subcommands.add_parser('pause', help="skip a job's scheduled runs until resumed, or for a while",
                                       description="Pauses the job NAME of the running crontab: its scheduled and "
                                                   "catch-up runs are recorded as skipped, it is not overdue and "
                                                   "sends no notification. Run now still runs it.")
        pause.add_argument('name')
        until = pause.add_mutually_exclusive_group()
        until.add_argument('--for', dest='duration', metavar='DURATION', help='e.g. 2h, 90m: then it resumes by itself')
        until.add_argument('--until', metavar='TIME', help="e.g. '2026-12-24 08:00' (the TOM's time zone)")
        pause.add_argument('--reason', default='', help='shown with the pause, and on each run it skips')
        resume = subcommands.add_parser('resume', help='end the pause of a job')
        resume.add_argument('name')
        notify = subcommands.add_parser('notify', help='send the notifications due (JOBS_NOTIFY)',
                                        description='Sends what is due of jobs turning failing or overdue, and '
                                                    'recovering (the cron container and `jobs check` do it too); '
                                                    '--test sends a test message to every channel.')
        notify.add_argument('--test', action='store_true', help='send a test message; exit 1 if it cannot be sent')
        subcommands.add_parser('list', help='the schedule, with next run, last run and last success of each job')
        loaded = subcommands.add_parser('loaded', help='record FILE as the crontab the cron container runs')
        loaded.add_argument('file')
        rejected = subcommands.add_parser('rejected', help='record FILE as an edit the cron container refused')
        rejected.add_argument('file')
        rejected.add_argument('reason')
        subcommands.add_parser('cron', help="the cron container's program: runs CRONTAB with supercronic",
                               description='Runs the crontab CRONTAB with supercronic, loads its edits live, '
                                           'catches up missed jobs, runs Run now requests, and keeps the state '
                                           'the health check reads (CRON_HEALTH_FILE), until SIGTERM or SIGINT.')
        export = subcommands.add_parser('export', help="write the crontab's jobs for a scheduler other than cron",
                                        description='Writes the jobs of a crontab as the Helm chart under '
                                                    'deploy/ reads them, one Kubernetes CronJob each.')
        export.add_argument('--kubernetes', action='store_true', required=True,
                            help='as Kubernetes CronJobs (the only form for now)')
        export.add_argument('--crontab', default='crontab', metavar='FILE', help='the crontab (default: ./crontab)')
        export.add_argument('--output', metavar='FILE', help='write here instead of to stdout')

    def handle(self, *args, **options):
        handler = getattr(self, 'handle_' + options['subcommand'].replace('-', '_'))
        return handler(options)

    def handle_run(self, options):
        spec = spec_from_options(options)
        check_command(spec.argv)
        try:
            handshake = Handshake.from_environment(os.environ)
        except BadHandshake as error:
            raise CommandError(f'jobs run: {error}', returncode=2)
        status = runner.run(spec, handshake)
        if status:
            # The runner has said why; exit with the job's own status.
            raise SystemExit(status)

    def handle_check(self, options):
        for row in results.mark_lost():  # tasks whose worker stopped being heard from
            self.stderr.write(f'LOST task {queue.name(row)} {row.pk}: {row.record.error}')
            sentry.report_failure(row)
        report = overview.report(record_lost=True)
        if report.load is None:
            raise CommandError('no crontab has been recorded: the cron container has not started yet', returncode=1)
        alerts.record_changes(report)
        stream_state.record_changes(report.streams)
        notify.send_due(Say('jobs'))  # a channel down is a line here, never this check's failure
        lines, verdict = overview.verdict(report)
        for state in report.paused:
            self.stdout.write(f'PAUSED {state.name}: {pauses.describe(state.pause)}')
        for state in report.failing:
            self.stdout.write(f'FAILING {state.name}: its last {state.failures} run(s) failed')
        if report.backup.warning:
            self.stdout.write(f'WARNING backup: {report.backup.warning}')
        for line in lines:
            self.stderr.write(line)
        if lines:
            raise CommandError(verdict, returncode=1)
        self.stdout.write(verdict)

    def handle_pause(self, options):
        name = options['name']
        if schedule.line_of(name) is None:
            raise CommandError(f'the running crontab has no job {name!r} (see `jobs list`)')
        until = None
        try:
            if options['duration']:
                until = timezone.now() + timedelta(seconds=parse_duration(options['duration']))
            elif options['until']:
                until = datetime.fromisoformat(options['until'])
                if timezone.is_naive(until):
                    until = timezone.make_aware(until)
        except ValueError as error:
            raise CommandError(f'--for/--until: {error}')
        if until is not None and until <= timezone.now():
            raise CommandError(f'--until {options["until"]} has passed')
        paused = pauses.pause(name, _shell_user(), until, options['reason'])
        self.stdout.write(f'jobs: {name} {pauses.describe(paused)}')

    def handle_notify(self, options):
        if options['test']:
            if not notify.configured():
                raise CommandError('no channel: set JOBS_NOTIFY or JOBS_NOTIFY_EMAIL_STAFF')
            error = notify.deliver(f'{settings.TOM_NAME}: a test of its job notifications',
                                   f'Sent by `manage.py jobs notify --test`. {alerts.link("save_data")}')
            if error:
                raise CommandError(error)
            self.stdout.write('jobs: the test message was sent')
            return
        sent, failed = notify.send_due(Say('jobs'))
        if failed:
            raise CommandError(f'{failed} notification(s) could not be sent ({sent} sent)')

    def handle_resume(self, options):
        if not pauses.resume(options['name'], _shell_user()):
            raise CommandError(f'{options["name"]} is not paused')
        self.stdout.write(f'jobs: {options["name"]} resumed')

    def handle_list(self, options):
        report = overdue.report(check_commands=False)
        if report.load is None:
            raise CommandError('no crontab has been recorded: the cron container has not started yet')
        self.stdout.write(f'crontab loaded {format_local(report.load.loaded_at)} on {report.load.host}; '
                          f'schedules in {report.crontab.timezone}')
        rows = [('JOB', 'SCHEDULE', 'NEXT RUN', 'LAST RUN', 'LAST SUCCESS')]
        for state in report.jobs:
            last = state.last_run
            last_run = f'{last.outcome} {format_local(last.started_at)}' if last else '-'
            if last and last.duration is not None:
                last_run += f' ({last.duration:.1f} s)'
            if last and last.summary:
                last_run += f': {last.summary[:60]}'
            status = ' OVERDUE' if state.overdue(report.now) else ' PAUSED' if state.pause else ''
            rows.append((state.name + status, str(state.line.schedule),
                         format_local(state.next_run) if state.next_run else '-', last_run,
                         format_local(state.last_success.started_at) if state.last_success else 'never'))
        # Columns as wide as their widest cell; the last one is not padded.
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)] + [0]
        for row in rows:
            self.stdout.write('  '.join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        for line, reason in report.problems:
            self.stdout.write(f'PROBLEM crontab line {line.number}: {reason}')

    def handle_loaded(self, options):
        crontab = schedule.record_load(_read(options['file']))
        self.stdout.write(f'jobs: recorded the schedule of {options["file"]}: {len(crontab.jobs())} job(s)')

    def handle_rejected(self, options):
        schedule.record_rejection(_read(options['file']), options['reason'])
        self.stdout.write(f'jobs: recorded the rejected edit of {options["file"]}')

    def handle_cron(self, options):
        status = Program(Say('cron')).run()
        if status:
            raise SystemExit(status)  # the program has said why

    def handle_export(self, options):
        try:
            text = kubernetes.export(_read(options['crontab']))
        except kubernetes.ExportError as error:
            raise CommandError(f'{options["crontab"]} {error}')
        if not options['output']:
            self.stdout.write(text, ending='')
            return
        try:
            Path(options['output']).write_text(text)
        except OSError as error:
            raise CommandError(f'cannot write {options["output"]}: {error.strerror}')
        self.stderr.write(f'jobs: wrote the jobs of {options["crontab"]} to {options["output"]}')


def _shell_user():
    """Who runs `jobs pause` or `jobs resume`, for the record."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a container's uid with no name
        return f'uid {os.getuid()}'


def _read(path):
    try:
        return Path(path).read_text()
    except OSError as error:
        raise CommandError(f'cannot read {path}: {error.strerror}')
