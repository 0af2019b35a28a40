"""The queued tasks' rules and the supervision they share with jobs, in-process with a fixed
clock: the claim order, the lost-task rule, how an ended task is named, and a child bounded
in time (two short `sh` children are the only processes started)."""
import os
import signal
import sys
import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from django_tasks import ResultStatus
from django_tasks.backends.database.models import DBTaskResult

from myapp.models import TaskRecord
from myapp.supervision import liveness, process
from myapp.supervision.bounded import KILL_GRACE, Bounded
from myapp.supervision.output import Output
from myapp.task_queue import queue, results
from tests import tasks

T = datetime(2026, 6, 1, 10, 0, tzinfo=UTC)


@pytest.mark.django_db(transaction=True)  # django-tasks stores a task once its transaction commits
def test_tasks_are_claimed_by_priority_then_oldest_first_and_once():
    low = tasks.echo.enqueue('low, first queued')
    high = tasks.echo.using(priority=10).enqueue('high')
    later = tasks.echo.enqueue('low, queued later')
    DBTaskResult.objects.filter(pk=low.id).update(enqueued_at=T)
    DBTaskResult.objects.filter(pk=later.id).update(enqueued_at=T + timedelta(seconds=1))

    taken = [str(queue.take('h', f'h:1:{n}').pk) for n in range(3)]

    assert taken == [str(high.id), str(low.id), str(later.id)]
    assert queue.take('h', 'h:1:x') is None
    assert set(TaskRecord.objects.values_list('worker', flat=True)) == {'h:1:0', 'h:1:1', 'h:1:2'}


@pytest.mark.django_db(transaction=True)  # django-tasks stores a task once its transaction commits
def test_a_task_not_yet_due_waits_and_the_oldest_waiting_counts_from_its_time():
    due = tasks.echo.enqueue('now')
    DBTaskResult.objects.filter(pk=due.id).update(enqueued_at=timezone.now() - timedelta(minutes=5))
    tasks.echo.using(run_after=timezone.now() + timedelta(hours=1)).enqueue('later')

    assert [str(row.pk) for row in queue.ready()] == [str(due.id)]
    assert str(queue.oldest_waiting().pk) == str(due.id)


def running_task(heard_at, worker='node-7:1:abcd', host='node-7'):
    row = tasks.echo.enqueue('x')
    DBTaskResult.objects.filter(pk=row.id).update(status=ResultStatus.RUNNING, started_at=T - timedelta(minutes=5))
    TaskRecord.objects.create(result_id=row.id, host=host, worker=worker, heartbeat_at=heard_at)
    return row


@pytest.mark.django_db(transaction=True)  # django-tasks stores a task once its transaction commits
def test_a_task_whose_worker_is_silent_for_a_minute_is_recorded_lost_once():
    row = running_task(heard_at=T)

    assert results.mark_lost(now=T + timedelta(seconds=60)) == []
    lost = results.mark_lost(now=T + timedelta(seconds=61))

    assert [str(found.pk) for found in lost] == [str(row.id)]
    record = TaskRecord.objects.get(result_id=row.id)
    assert record.outcome == 'lost'
    assert record.error.startswith('worker lost: its worker node-7:1:abcd on host node-7 stopped (last heard')
    assert DBTaskResult.objects.get(pk=row.id).status == ResultStatus.FAILED
    assert results.mark_lost(now=T + timedelta(hours=1)) == []
    assert results.counts() == {('tests.tasks.echo', 'lost'): 1}


@pytest.mark.django_db(transaction=True)  # django-tasks stores a task once its transaction commits
def test_a_worker_of_this_host_sees_the_tasks_of_a_dead_worker_lost_at_once():
    here = liveness.this_host()
    dead = running_task(heard_at=T, worker=f'{here}:{os.getpid()}:old', host=here)   # its pid: ours now
    mine = running_task(heard_at=T, worker=f'{here}:{os.getpid()}:mine', host=here)

    lost = results.mark_lost(worker=f'{here}:{os.getpid()}:mine', pid=os.getpid(), now=T + timedelta(seconds=1))

    assert [str(row.pk) for row in lost] == [str(dead.id)]
    assert TaskRecord.objects.get(result_id=mine.id).outcome == ''


def test_an_ended_task_is_named_by_its_row_and_exit_status():
    row = DBTaskResult(status=ResultStatus.SUCCEEDED, return_value=False)
    assert results.outcome_of(row, 0, '10:00 ERROR the service refused\n') == (
        'failed', 'the task returned False: ERROR the service refused')
    row = DBTaskResult(status=ResultStatus.FAILED, traceback='Traceback...\nRuntimeError: boom\n')
    assert results.outcome_of(row, 1, '') == ('failed', 'RuntimeError: boom')
    row = DBTaskResult(status=ResultStatus.RUNNING)
    assert results.outcome_of(row, -9, '') == (
        'failed', 'its process ended with exit status -9 before recording a result')


# The supervision both share.

def test_output_is_passed_through_and_its_tail_and_summary_kept(tmp_path):
    with open(tmp_path / 'out', 'wb') as sink:
        output = Output({3: sink})
        output.feed(3, b'line one\ndone: 2 records')
        output.feed(3, b' saved\nlast words')
        output.close()

    assert (tmp_path / 'out').read_bytes() == b'line one\ndone: 2 records saved\nlast words\n'
    assert output.tail == 'line one\ndone: 2 records saved\nlast words'
    assert output.summary == 'done: 2 records saved'


def start(script, timeout):
    """A shell child, supervised: its output pipe given to a Bounded."""
    read_end, write_end = os.pipe()
    child = process.spawn(['sh', '-c', script], dict(os.environ), stdout=write_end, stderr=write_end)
    os.close(write_end)
    os.set_blocking(read_end, False)
    return child, Bounded(child.pid, {read_end: sys.stdout.buffer}, started=0.0, timeout=timeout)


def wait(child, bounded):
    child.wait(timeout=30)
    bounded.exited(process.shell_status(child.returncode), 0.0)


def test_a_child_past_its_timeout_gets_sigterm_then_sigkill_a_grace_later():
    child, bounded = start('trap "" TERM; echo ready; exec sleep 30', timeout=10.0)
    deadline = time.monotonic() + 10
    while not bounded.output.tail and time.monotonic() < deadline:
        bounded.read_available()
        time.sleep(0.02)

    assert bounded.bound(9.9) is None and child.poll() is None
    assert bounded.bound(10.0) == 'timeout'           # SIGTERM, which it ignores
    assert bounded.bound(10.0 + KILL_GRACE - 0.1) is None
    time.sleep(0.2)
    assert child.poll() is None
    bounded.bound(10.0 + KILL_GRACE)                   # SIGKILL
    wait(child, bounded)

    assert (bounded.outcome, bounded.status, bounded.exit_status) == ('timed out', 124, 128 + signal.SIGKILL)
    bounded.close()
    assert bounded.output.tail == 'ready'


def test_a_child_stopped_on_request_says_why_and_ends_failed():
    child, bounded = start('exec sleep 30', timeout=None)

    bounded.stop('stopped: its worker was stopped (SIGTERM)')
    assert bounded.bound(1.0) == 'stopped: its worker was stopped (SIGTERM)'
    wait(child, bounded)

    assert (bounded.outcome, bounded.status, bounded.timed_out) == ('failed', 128 + signal.SIGTERM, False)
    bounded.close()
