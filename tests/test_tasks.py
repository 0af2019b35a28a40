"""The TOM's queued tasks, run by the cron container's program (`jobs cron`) as separate
processes against the test database: TOM Toolkit's ATLAS query through its own form against
a fake ATLAS on 127.0.0.1, a task stopped at its timeout while the next one runs, a worker
killed mid-task, failures named, Retry, and the alarm of `jobs check` on a queue nobody takes."""
import os
import signal
import time
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.utils import timezone
from django_tasks.backends.database.models import DBTaskResult

from myapp.jobs import schedule
from myapp.models import TaskRecord
from tests import tasks
from tests.conftest import WOKEN_WITHIN, atlas_env, make_target, run_job, wait_for
from tests.fake_sentry import FakeSentry

QUIET_CRONTAB = '@yearly python manage.py jobs run --no-catch-up clearsessions\n'


@pytest.fixture
def worker_env(tom_env, atlas):
    """The cron program's environment, with the fake ATLAS."""
    tom_env.update(atlas_env(tom_env, atlas))
    return tom_env


def staff_client(**powers):
    user = User.objects.create_user('pi', password='x', is_staff=True, **powers)
    client = Client()
    client.force_login(user)
    return client


def record_of(row_id):
    return TaskRecord.objects.filter(result_id=row_id).first()


def ended(row_id):
    record = record_of(row_id)
    return record if record and record.outcome else None


def test_the_atlas_form_answers_queued_and_the_worker_lands_the_photometry(worker_env, atlas, atlas_settings,
                                                                           cron_program):
    from tom_dataproducts.models import DataProduct, PhotometryReducedDatum

    target = make_target()
    client = staff_client(is_superuser=True)  # who may see the (private) target
    atlas.finish_after = None  # ATLAS holds the job until the test lets it finish
    answer = client.post('/dataproducts/data/single_target_data_service/Atlas/query/', {
        'target_id': target.pk, 'service': 'Atlas', 'min_date_mjd': 60000, 'max_date_mjd': 60010})

    # The answer came with the task queued, not run: nothing has reached ATLAS yet.
    assert answer.status_code == 302 and answer['Location'] == f'/targets/{target.pk}/?tab=photometry'
    [row] = DBTaskResult.objects.all()
    assert (row.task_path, row.status, atlas.jobs) == ('tom_dataproducts.tasks.atlas_query', 'NEW', [])

    cron_program(QUIET_CRONTAB)
    wait_for('ATLAS to be asked', lambda: atlas.jobs and atlas.jobs[0]['reports'] > 0)
    assert atlas.jobs[0]['mjd_min'] == '60000.0' and atlas.jobs[0]['ra'] == '10.0'
    assert DataProduct.objects.count() == 0
    atlas.finish_after = 0
    product = wait_for('the data product', lambda: DataProduct.objects.filter(target=target).first(), seconds=60)
    assert product.data_product_type == 'atlas_photometry'
    record = wait_for('the task to end', lambda: ended(row.pk))
    assert record.outcome == 'succeeded', record.error
    # TOM Toolkit 3.1 keeps photometry points in a table of their own, which its light curve reads.
    points = PhotometryReducedDatum.objects.filter(target=target, data_product=product).order_by('timestamp')
    assert [(p.bandpass, p.brightness) for p in points] == [('o', 17.5), ('c', 17.6), ('o', 17.7)]
    page = client.get(f'/targets/{target.pk}/?tab=manage-data')
    assert page.status_code == 200 and product.data.name.rsplit('/', 1)[-1] in page.content.decode()


def test_a_task_past_its_timeout_is_stopped_recorded_failed_and_the_next_task_runs(worker_env, atlas, cron_program):
    # Long enough for any task process to start on a loaded machine (the next one must finish
    # within it too), short enough for a test.
    worker_env.update({'TASKS_TIMEOUT': '10s', 'TASKS_CONCURRENCY': '1'})
    atlas.finish_after = None  # never finishes: the ATLAS task would poll for ever
    target = make_target()
    hung = atlas_task().enqueue(60000, None, target.pk, 'atlas_photometry')
    after = tasks.echo.enqueue('next')

    program = cron_program(QUIET_CRONTAB)

    record = wait_for('the hung task to end', lambda: ended(hung.id), seconds=60)
    assert record.outcome == 'timed out'
    assert record.error == 'timed out after 10s (TASKS_TIMEOUT)'
    assert DBTaskResult.objects.get(pk=hung.id).status == 'FAILED'
    assert 9.5 < record.duration < 25
    assert wait_for('the next task', lambda: ended(after.id)).outcome == 'succeeded'
    assert 'echo says next' in record_of(after.id).output_tail
    log = program.log.read_text()
    assert f'tasks: atlas_query task {hung.id} timed out after 10s (TASKS_TIMEOUT): stopping it (SIGTERM)' in log
    assert f'tasks: echo task {after.id} succeeded in ' in log


def test_a_task_queued_while_the_program_sleeps_wakes_it(worker_env, cron_program):
    cron_program(QUIET_CRONTAB)
    time.sleep(3)  # past its first look at the queue at start: asleep until its next poll

    queued = tasks.echo.enqueue('awake')
    asked = time.monotonic()
    wait_for('the task to be taken', lambda: record_of(queued.id), seconds=90)

    waited = time.monotonic() - asked
    assert waited < WOKEN_WITHIN, f'the task waited {waited:.1f} s to be taken'


def test_a_worker_killed_mid_task_leaves_the_task_failed_as_lost_and_never_runs_it_again(worker_env, cron_program):
    slow = tasks.sleep.enqueue(120)
    first = cron_program(QUIET_CRONTAB)
    record = wait_for('the task to start', lambda: (r := record_of(slow.id)) and r.pid and r)

    first.send_signal(signal.SIGKILL)
    first.wait()
    wait_for('the task process to die with its worker', lambda: not _alive(record.pid), seconds=10)
    assert DBTaskResult.objects.get(pk=slow.id).status == 'RUNNING'  # nobody has said otherwise yet

    second = cron_program(QUIET_CRONTAB)

    lost = wait_for('the task to be recorded lost', lambda: ended(slow.id), seconds=30)
    assert lost.outcome == 'lost'
    assert lost.error.startswith(f'worker lost: its worker {record.worker} on host {record.host} stopped')
    assert DBTaskResult.objects.get(pk=slow.id).status == 'FAILED'
    time.sleep(3)
    assert DBTaskResult.objects.get(pk=slow.id).status == 'FAILED'
    assert 'sleeping 120 s' not in second.log.read_text()  # not run a second time
    assert f'tasks: sleep task {slow.id} worker lost' in second.log.read_text()


def test_failures_are_named_with_their_output_counted_and_sent_to_sentry(worker_env, cron_program, settings):
    settings.METRICS_TOKEN = 't'
    sentry = FakeSentry().start()
    try:
        worker_env['SENTRY_DSN'] = sentry.dsn
        raised = tasks.fail.enqueue('the archive said no')
        refused = tasks.refuse.enqueue()
        fine = tasks.echo.enqueue('ok')
        cron_program(QUIET_CRONTAB)

        for row_id in (raised.id, refused.id, fine.id):
            wait_for(f'task {row_id} to end', lambda row_id=row_id: ended(row_id))
        failure = record_of(raised.id)
        assert (failure.outcome, failure.error) == ('failed', 'RuntimeError: the archive said no')
        assert 'Traceback' in failure.output_tail and 'raise RuntimeError(reason)' in failure.output_tail
        refusal = record_of(refused.id)
        assert refusal.outcome == 'failed'
        assert refusal.error == 'the task returned False: ERROR the service refused the query'
        assert record_of(fine.id).outcome == 'succeeded'

        events = wait_for('two Sentry events', lambda: len(sentry.of_type('event')) >= 2 and sentry.of_type('event'))
        messages = sorted(event['message'] for event in events)
        assert messages == ['task fail failed: RuntimeError: the archive said no',
                            'task refuse failed: the task returned False: ERROR the service refused the query']
        assert {event['tags']['task'] for event in events} == {'tests.tasks.fail', 'tests.tasks.refuse'}
    finally:
        sentry.stop()

    metrics = Client().get('/metrics', HTTP_AUTHORIZATION='Bearer t').content.decode()
    assert 'tom_task_runs_total{outcome="failed",task="tests.tasks.fail"} 1.0' in metrics
    assert 'tom_task_runs_total{outcome="succeeded",task="tests.tasks.echo"} 1.0' in metrics
    assert 'tom_tasks_queued 0.0' in metrics


def test_jobs_check_fails_naming_the_task_that_has_waited_past_TASKS_MAX_WAIT(tom_env):
    schedule.record_load(QUIET_CRONTAB)
    waiting = tasks.echo.enqueue('anyone?')
    assert run_job(tom_env, 'jobs', 'check').returncode == 0

    DBTaskResult.objects.filter(pk=waiting.id).update(enqueued_at=timezone.now() - timedelta(minutes=11))
    check = run_job(tom_env, 'jobs', 'check')

    assert check.returncode == 1
    assert f'OVERDUE task queue: echo task {waiting.id}, queued ' in check.stderr
    assert 'has waited 11m' in check.stderr
    assert '(TASKS_MAX_WAIT 10m): no worker is taking tasks' in check.stderr
    assert run_job({**tom_env, 'TASKS_MAX_WAIT': '15m'}, 'jobs', 'check').returncode == 0
    page = staff_client().get('/jobs/').content.decode()
    assert 'id="tasks-stuck"' in page and 'no worker is taking tasks' in page


def test_jobs_check_records_a_task_lost_whose_worker_has_gone_silent(tom_env):
    schedule.record_load(QUIET_CRONTAB)
    row = tasks.echo.enqueue('x')
    DBTaskResult.objects.filter(pk=row.id).update(status='RUNNING', started_at=timezone.now() - timedelta(minutes=5))
    TaskRecord.objects.create(result_id=row.id, host='node-7', worker='node-7:1:abcd',
                              heartbeat_at=timezone.now() - timedelta(minutes=2))

    check = run_job(tom_env, 'jobs', 'check')

    assert f'LOST task echo {row.id}: worker lost: its worker node-7:1:abcd on host node-7 stopped' in check.stderr
    assert (record_of(row.id).outcome, DBTaskResult.objects.get(pk=row.id).status) == ('lost', 'FAILED')


def test_staff_retry_a_failed_task_and_who_asked_is_kept(transactional_db):
    failed = tasks.fail.enqueue('once')
    DBTaskResult.objects.filter(pk=failed.id).update(status='FAILED', finished_at=timezone.now())
    TaskRecord.objects.create(result_id=failed.id, outcome='failed', error='RuntimeError: once')
    succeeded = tasks.echo.enqueue('fine')
    DBTaskResult.objects.filter(pk=succeeded.id).update(status='SUCCEEDED', finished_at=timezone.now())
    TaskRecord.objects.create(result_id=succeeded.id, outcome='succeeded')
    staff = staff_client()
    reader = Client()
    reader.force_login(User.objects.create_user('reader', password='x'))

    assert reader.post(f'/api/jobs/tasks/{failed.id}/retry/').status_code == 403
    assert staff.post(f'/api/jobs/tasks/{succeeded.id}/retry/').status_code == 409
    page = staff.get('/jobs/').content.decode()
    assert page.count('>Retry</button>') == 1

    answer = staff.post(f'/api/jobs/tasks/{failed.id}/retry/', {'from': 'page'})

    assert answer.status_code == 303
    again = DBTaskResult.objects.exclude(pk__in=[failed.id, succeeded.id]).get()
    assert answer['Location'] == f'/jobs/#task-{again.pk}'
    assert (again.status, again.task_path) == ('NEW', 'tests.tasks.fail')
    assert again.args_kwargs == {'args': ['once'], 'kwargs': {}}
    record = record_of(again.pk)
    assert (str(record.retry_of_id), record.retried_by.username) == (failed.id, 'pi')
    listed = staff.get('/api/jobs/').json()['tasks']
    assert listed['queued_count'] == 1 and listed['queued'][0]['retried_by'] == 'pi'
    assert f'retry of {failed.id}, asked by pi' in staff.get('/jobs/').content.decode()


def atlas_task():
    from tom_dataproducts.tasks import atlas_query

    return atlas_query


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
