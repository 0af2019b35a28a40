"""`manage.py tasks`: the queued tasks' command line (the worker is a part of `jobs cron`).

  tasks run ID      run one claimed task (the worker starts one such process per task)
  tasks report ID   send a failed task to Sentry (the worker starts it once it recorded the failure)
  tasks work        the worker alone, without the schedule: Kubernetes' worker Deployment
"""
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django_tasks.backends.database.models import DBTaskResult

from myapp.logs import Say
from myapp.sidecar.program import Program
from myapp.task_queue import execute, sentry


class Command(BaseCommand):
    help = "Runs the TOM's queued tasks (django-tasks' database backend)."
    requires_system_checks = []

    def add_arguments(self, parser):
        subcommands = parser.add_subparsers(dest='subcommand', required=True, metavar='SUBCOMMAND')
        run = subcommands.add_parser('run', help='run one task that a worker has claimed')
        run.add_argument('id')
        report = subcommands.add_parser('report', help='send a failed task to Sentry (when SENTRY_DSN is set)')
        report.add_argument('id')
        subcommands.add_parser('work', help='run queued tasks until SIGTERM or SIGINT, without the schedule',
                               description='The task worker of `jobs cron` alone: TASKS_CONCURRENCY tasks at '
                                           'once, each stopped past TASKS_TIMEOUT, with the heartbeat of '
                                           'CRON_HEALTH_FILE.')

    def handle(self, *args, **options):
        return getattr(self, 'handle_' + options['subcommand'])(options)

    def handle_run(self, options):
        try:
            status = execute.run(options['id'])
        except execute.NotRunnable as error:
            raise CommandError(str(error))
        if status:
            raise SystemExit(status)  # its traceback is printed and recorded

    def handle_report(self, options):
        try:
            row = DBTaskResult.objects.filter(pk=options['id']).select_related('record').first()
        except ValidationError:  # not a task id at all
            row = None
        if row is None:
            raise CommandError(f'no task {options["id"]}')
        if sentry.report_failure(row):
            self.stdout.write(f'tasks: reported task {row.pk} to Sentry')

    def handle_work(self, options):
        status = Program(Say('cron'), role='worker').run()
        if status:
            raise SystemExit(status)
