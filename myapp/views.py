"""The TOM's own pages: data product files for the users who may see their target, the Jobs
pages (the schedule's jobs and the queued tasks) and their JSON view, and the metrics for
Prometheus."""
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import constant_time_compare
from django.views.generic import TemplateView
from django_tasks.backends.database.models import DBTaskResult
from prometheus_client import CONTENT_TYPE_LATEST
from rest_framework.permissions import IsAdminUser, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from tom_dataproducts.models import DataProduct
from tom_targets.models import Target
from tom_targets.permissions import targets_for_user

from myapp import target_tab
from myapp.charts import duration_chart
from myapp.jobs import history, pauses, run_now, schedule
from myapp.models import JobRequest, JobRun
from myapp.overview.board import board
from myapp.overview.metrics import exposition
from myapp.storage import local_path
from myapp.streams import state as stream_state
from myapp.task_queue import queue
from myapp.task_queue.board import task_board
from myapp.timing import parse_duration

# What a job printed and what a task was given can name private targets and files: staff only.
STAFF_ONLY_KEYS = frozenset({'summary', 'output_tail', 'error', 'arguments', 'last_error'})
MAX_FIELD = 500  # characters of a pause's duration or reason: a sentence, not a file


@login_required
def data_product_file(request, path):
    """With DEBUG off Django serves no media, and data products can be proprietary: this view
    replaces the public `MEDIA_URL` route that TOM Toolkit adds only in DEBUG. It serves a
    product's file and its thumbnail (the data list's preview), to those who may view it."""
    product = DataProduct.objects.filter(Q(data=path) | Q(thumbnail=path)).select_related('target').first()
    if product is None or not _may_view(request.user, product):
        raise Http404('No such data product')  # the same answer whether it exists or not
    file = product.data if product.data.name == path else product.thumbnail
    if local_path(file.storage, file.name) is None:
        # In an object store: a link that works for AWS_QUERYSTRING_EXPIRE seconds.
        return HttpResponseRedirect(file.url)
    try:
        return FileResponse(file.open('rb'), filename=file.name.rsplit('/', 1)[-1])
    except FileNotFoundError:
        raise Http404('The data product has no file')


def _may_view(user, product):
    if settings.TARGET_PERMISSIONS_ONLY:
        return targets_for_user(user, Target.objects.filter(pk=product.target_id), 'view_target').exists()
    return user.has_perm('tom_dataproducts.view_dataproduct', product)


def job_metrics(request):
    """The job history in Prometheus' text format, for a scraper bearing METRICS_TOKEN; not
    served at all (404) while no token is set."""
    if not settings.METRICS_TOKEN:
        raise Http404('No metrics here')
    if not constant_time_compare(request.headers.get('Authorization', ''), f'Bearer {settings.METRICS_TOKEN}'):
        return HttpResponse('a bearer token is required\n', status=401, content_type='text/plain',
                            headers={'WWW-Authenticate': 'Bearer'})
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)


class JobListView(LoginRequiredMixin, TemplateView):
    """Every job of the schedule the cron container runs: when it runs next, how it last
    ran, when it last succeeded; overdue and failing jobs first in the reader's eye."""

    template_name = 'myapp/job_list.html'

    def get_context_data(self, **kwargs):
        streams = stream_state.report()
        items = []
        for row in streams.rows:
            item = row.as_dict(streams.now)
            item['connected_since_time'] = row.connected_since(streams.now)
            item['last_message_time'] = row.state.last_message_at
            items.append(item)
        return {**super().get_context_data(**kwargs), 'board': board(), 'tasks': task_board(),
                'may_retry': self.request.user.is_staff, 'streams': streams, 'stream_items': items,
                'dead_letters': stream_state.waiting_letters() if self.request.user.is_staff else []}


class JobDetailView(LoginRequiredMixin, TemplateView):
    """One job's runs, newest first, with a chart of recent durations and Run now for staff."""

    template_name = 'myapp/job_detail.html'
    paginate_by = 20
    chart_runs = 100

    def get_context_data(self, name, **kwargs):
        line = schedule.line_of(name)
        runs = JobRun.objects.filter(name=name).order_by('-started_at')
        if line is None and not runs.exists():
            raise Http404('No such job')
        page = Paginator(runs, self.paginate_by).get_page(self.request.GET.get('page'))
        # After Run now without htmx, the page follows the request it was redirected with.
        pause = pauses.of(name)
        request_id = self.request.GET.get('request', '')
        job_request = JobRequest.objects.filter(pk=request_id, name=name).first() if request_id.isdigit() else None
        return {
            **super().get_context_data(**kwargs),
            'name': name, 'line': line, 'page_obj': page, 'runs': history.as_seen(list(page.object_list)),
            'chart': duration_chart(list(runs[:self.chart_runs]), summaries=self.request.user.is_staff),
            'may_run_now': line is not None and self.request.user.is_staff,
            'job_request': job_request, 'state': run_now.state(job_request) if job_request else None,
            'pause': pause, 'pause_text': pauses.describe(pause) if pause else '',
        }


class JobsAPIView(APIView):
    """GET /api/jobs/: the Jobs page's list as JSON, for monitoring and scripts (token or session);
    what jobs printed and tasks were given, for staff only."""

    permission_classes = [IsAuthenticated]

    def get(self, request):
        jobs_board = board()
        load, rejection = jobs_board.load, jobs_board.rejection
        answer = {
            'crontab_loaded_at': load.loaded_at.isoformat() if load else None,
            'rejected_edit': {'at': rejection.loaded_at.isoformat(), 'bad_line': rejection.bad_line,
                              'reason': rejection.reason} if rejection else None,
            'problems': [{'line': line.number, 'reason': reason} for line, reason in jobs_board.problems],
            'jobs': [row.as_dict() for row in jobs_board.rows],
            'tasks': task_board().as_dict(),
            'backups': jobs_board.backup.as_dict(),
            'streams': _streams_answer(),
        }
        return Response(answer if request.user.is_staff else _names_times_outcomes(answer))


class RunNowView(APIView):
    """POST /api/jobs/<name>/run/: staff ask the cron container to run the job now. An API
    view so that a refusal stays a 403 (TOM Toolkit turns a page's 403 into a login page);
    session requests need the CSRF token. htmx gets the request's status to show; the plain
    form is sent back to the job's page, which follows the request."""

    permission_classes = [IsAdminUser]

    def post(self, request, name):
        job_request = run_now.ask(name, request.user)
        if job_request is None:
            raise Http404('The running crontab has no such job')
        if not request.headers.get('HX-Request'):  # the plain form: back to the job's page
            return _see_other(f'{reverse("jobs:detail", args=[name])}?request={job_request.pk}')
        return render(request._request, 'myapp/partials/run_request.html',
                      {'job_request': job_request, 'state': run_now.state(job_request)}, status=202)


@login_required
def run_request(request, pk):
    """Where a Run now request is (queued, starting, running, its outcome): the Jobs page
    asks again every two seconds until it has ended."""
    job_request = get_object_or_404(JobRequest.objects.select_related('run'), pk=pk)
    return render(request, 'myapp/partials/run_request.html',
                  {'job_request': job_request, 'state': run_now.state(job_request)})


class RetryTaskView(APIView):
    """POST /api/jobs/tasks/<id>/retry/: staff queue a failed task again, with the same
    arguments; who asked and when is kept on the new task. The plain form is sent back to
    the Jobs page's tasks."""

    permission_classes = [IsAdminUser]

    def post(self, request, pk):
        row = DBTaskResult.objects.filter(pk=pk).select_related('record').first()
        if row is None:
            raise Http404('No such task')
        try:
            new = queue.retry(row, request.user)
        except queue.RetryRefused as error:
            return Response({'error': str(error)}, status=409)
        if not _from_a_form(request):
            return Response({'id': str(new.pk), 'retry_of': str(row.pk)}, status=201)
        return _see_other(f'{reverse("jobs:list")}#task-{new.pk}')


class PauseView(APIView):
    """POST /api/jobs/<name>/pause/ (`for`: a duration, empty for until resumed; `reason`) and
    /api/jobs/<name>/resume/: staff pause a job's scheduled runs, or end the pause. The plain
    form is sent back to the job's page; an API client gets the pause as JSON."""

    permission_classes = [IsAdminUser]
    resume = False

    def post(self, request, name):
        if schedule.line_of(name) is None:
            raise Http404('The running crontab has no such job')
        who = request.user.get_username()
        if self.resume:
            if not pauses.resume(name, who):
                return Response({'error': f'{name} is not paused'}, status=409)
            answer = {'name': name, 'paused': None}
        else:
            duration = str(request.data.get('for') or '').strip()[:MAX_FIELD]
            reason = str(request.data.get('reason') or '').strip()
            if len(reason) > MAX_FIELD:
                return Response({'error': f'the reason is longer than {MAX_FIELD} characters'}, status=400)
            try:
                until = timezone.now() + timedelta(seconds=parse_duration(duration)) if duration else None
            except ValueError as error:
                return Response({'error': str(error)}, status=400)
            except OverflowError:
                return Response({'error': f'{duration!r} is longer than any pause can be'}, status=400)
            pause = pauses.pause(name, who, until, reason)
            answer = {'name': name, 'paused': pauses.describe(pause)}
        if _from_a_form(request):
            return _see_other(reverse('jobs:detail', args=[name]))
        return Response(answer)


class DownloadNowView(APIView):
    """POST /api/jobs/targets/<pk>/download/: staff ask the cron container to run save_data
    for this target alone (`save_data --target_id <pk>`, through `jobs run`: its lock, timeout
    and history), recorded with the target and who asked. htmx gets the request's status; the
    plain form is sent back to the target's Jobs tab."""

    permission_classes = [IsAdminUser]

    def post(self, request, pk):
        target = get_object_or_404(Target, pk=pk)
        line = target_tab.save_data_line()
        if line is None:
            raise Http404('The running crontab has no save_data job')
        job_request = run_now.ask(line.name, request.user, ['--target_id', str(target.pk)], target)
        if not request.headers.get('HX-Request'):
            return _see_other(f'{reverse("tom_targets:detail", args=[target.pk])}?tab=jobs')
        return render(request._request, 'myapp/partials/run_request.html',
                      {'job_request': job_request, 'state': run_now.state(job_request)}, status=202)


def _streams_answer():
    streams = stream_state.report()
    return [row.as_dict(streams.now) for row in streams.rows]


class StreamPauseView(APIView):
    """POST /api/jobs/streams/<name>/pause/ (`reason`) and .../resume/: staff stop a stream on
    every replica (its messages wait in Kafka), or start it again from where it stopped."""

    permission_classes = [IsAdminUser]
    resume = False

    def post(self, request, name):
        if not stream_state.declared(name):
            raise Http404('No such stream runs')
        if self.resume:
            if not stream_state.resume(name):
                return Response({'error': f'{name} is not paused'}, status=409)
            answer = {'name': name, 'paused': None}
        else:
            reason = str(request.data.get('reason') or '').strip()
            if len(reason) > MAX_FIELD:
                return Response({'error': f'the reason is longer than {MAX_FIELD} characters'}, status=400)
            stream_state.pause(name, request.user.get_username(), reason)
            answer = {'name': name, 'paused': True}
        if _from_a_form(request):
            return _see_other(f'{reverse("jobs:list")}#streams')
        return Response(answer)


class RetryDeadLetterView(APIView):
    """POST /api/jobs/dead-letters/<id>/retry/: staff hand a dead letter to its handler again
    (once its cause is fixed): stored, it leaves the list; failing, its error is updated."""

    permission_classes = [IsAdminUser]

    def post(self, request, pk):
        try:
            error = stream_state.retry(pk, request.user.get_username())
        except stream_state.RetryRefused as refusal:
            return Response({'error': str(refusal)}, status=409 if 'no dead letter' not in str(refusal) else 404)
        if _from_a_form(request):
            return _see_other(f'{reverse("jobs:list")}#streams')
        if error:
            return Response({'id': pk, 'stored': False, 'error': error}, status=422)
        return Response({'id': pk, 'stored': True})


def _names_times_outcomes(value):
    """VALUE without the keys of STAFF_ONLY_KEYS, at any depth."""
    if isinstance(value, dict):
        return {key: _names_times_outcomes(item) for key, item in value.items() if key not in STAFF_ONLY_KEYS}
    if isinstance(value, list):
        return [_names_times_outcomes(item) for item in value]
    return value


def _from_a_form(request):
    """A plain HTML form posted it (as opposed to an API client sending JSON)."""
    return request.content_type.startswith(('application/x-www-form-urlencoded', 'multipart/form-data'))


def _see_other(url):
    """After a form's POST, the page to show: 303, so that a reload does not post again."""
    see_other = HttpResponseRedirect(url)
    see_other.status_code = 303
    return see_other
