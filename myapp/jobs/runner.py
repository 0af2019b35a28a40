"""`jobs run`'s engine: lock the job, record it, run it in a forked child, pass its output
through, stop it past its timeout, record how it ended, report it.

Exit status: the job's own; 124 when it timed out (as timeout(1) does); 128 + N when a
signal N killed it; 0 when it was skipped because another run had it in hand.
"""
import logging
import os
import selectors
import signal
import sys
import time
from datetime import UTC, datetime

from django.db import DatabaseError, connection

from myapp.failures import one_line
from myapp.jobs import alerts, child, history, notify, pauses, run_now, schedule
from myapp.jobs.handshake import Handshake
from myapp.jobs.locks import job_lock, lock_name
from myapp.jobs.sentry import SentryReport
from myapp.logs import Say
from myapp.models import JobRun
from myapp.supervision import liveness, process
from myapp.supervision.bounded import KILL_GRACE, Bounded
from myapp.timing import format_duration, format_moment

Outcome, Trigger = JobRun.Outcome, JobRun.Trigger
HEARTBEAT_SECONDS = liveness.HEARTBEAT.total_seconds()
# Without its lock (its database connection lost): how often the runner tries to take it
# again, how many refusals it takes to stop the job, and how long it goes on without a
# heartbeat before stopping it (past it, a killed job is gone before others take this run
# for lost, LOST_AFTER after its last heartbeat).
RETAKE_EVERY = 2.0
RETAKE_REFUSALS = 3
STOP_WITHOUT_LOCK = liveness.LOST_AFTER.total_seconds() - 2 * KILL_GRACE - HEARTBEAT_SECONDS
# How long output may still come once the job has exited (from processes it left behind).
DRAIN_SECONDS = 2.0


def run(spec, handshake=None, say=None):
    """Runs the job spec once, for the reason its starter gave (handshake); returns the exit
    status for `jobs run`. A run serving a Run now request is linked to it (or its skipped
    run is), and waits up to run_now.WAIT_FOR_LOCK for a run that holds the job's lock."""
    say = (say or Say('jobs')).bind(job=spec.name)
    handshake = handshake or Handshake()
    trigger, tick, request_id = handshake.trigger, handshake.tick, handshake.request

    def recorded(record):
        if request_id is not None:
            run_now.link(request_id, record)
        return record

    def skipped(reason):
        run = recorded(history.skip(spec, trigger, reason, tick))
        say.out(f'jobs: {spec.name} {reason}', run=run.pk, outcome=str(Outcome.SKIPPED), duration=0.0)
        return 0

    line = schedule.line_running_here(spec.name)
    if trigger == Trigger.SCHEDULE and tick is None and line is not None:
        tick = line.schedule.previous_before(_process_started_at())
    if trigger in (Trigger.SCHEDULE, Trigger.CATCH_UP):
        paused = pauses.of(spec.name)
        if paused:
            return skipped(f'skipped: {pauses.describe(paused)}')
    name = lock_name(spec)
    lock = job_lock(name)
    if not lock.acquire() and not (request_id and _wait_for(lock, name, request_id, spec, say)):
        holders = history.holders(name)
        waited = f' (waited {format_duration(run_now.WAIT_FOR_LOCK.total_seconds())})' if request_id else ''
        return skipped((_running(holders[0]) if holders else f'skipped: another process holds the {lock}') + waited)
    try:
        # A run whose runner lost this lock with its database connection may still be at
        # work, taking it again: while it is heard from, it is not lost.
        alive = [holder for holder in history.holders(name) if _alive(holder)]
        if alive:
            return skipped(_running(alive[0]) + ', without its lock since its database connection dropped')
        lost = history.mark_lost(name)
        if lost:
            say.err(f'jobs: {spec.name}: {lost} earlier run(s) whose runner died are now recorded as lost')
        if tick is not None and trigger == Trigger.SCHEDULE:
            done = history.ran_for_tick(spec.name, tick)
            if done:
                return skipped(f'skipped: run {done.pk} on host {done.host} already ran the {format_moment(tick)} run')
        if trigger == Trigger.CATCH_UP and history.ran_since(spec.name, tick):
            say.out(f'jobs: {spec.name}: no catch-up needed, the {format_moment(tick)} run has been done')
            return 0
        record = recorded(history.start(spec, trigger, tick, lock=name))
        return Supervisor(spec, record, line, lock, say.bind(run=record.pk)).supervise()
    finally:
        lock.release()


def _wait_for(lock, name, request_id, spec, say):
    """Waits, bounded, for the run that holds the lock; True once this process holds it."""
    give_up = time.monotonic() + run_now.WAIT_FOR_LOCK.total_seconds()
    said = None
    while time.monotonic() < give_up:
        holders = history.holders(name)
        what = (f'waiting for run {holders[0].pk} of {holders[0].name}, running since '
                f'{format_moment(holders[0].started_at)}') if holders else f'waiting for the {lock}'
        if what != said:
            run_now.waiting(request_id, what)
            say.out(f'jobs: {spec.name}: {what}')
            said = what
        time.sleep(RETAKE_EVERY)
        if lock.acquire():
            run_now.waiting(request_id, '')
            return True
    run_now.waiting(request_id, '')
    return False


def _running(holder):
    return (f'skipped: run {holder.pk} of {holder.name} is running on host {holder.host}, '
            f'pid {holder.pid}, since {format_moment(holder.started_at)}')


def _alive(run):
    """Whether the runner of a run recorded running may still be at work: heard from lately,
    and, on this host, its process still there."""
    if history.gone(run):
        return False
    return run.host != liveness.this_host() or liveness.pid_alive(run.pid)


class Supervisor:
    """Runs one recorded run's job in a child process and sees it to its end."""

    def __init__(self, spec, record, line, lock, say):
        self.spec, self.record, self.line, self.lock, self.say = spec, record, line, lock, say
        self.interrupted_by = None
        self.child = None             # the job's Bounded process

    def supervise(self):
        spec, record = self.spec, self.record
        command = f': {spec.command_line}' if spec.name != spec.command_line else ''
        self.say.out(f'jobs: {spec.name} run {record.pk} started on host {record.host}, pid {record.pid}, '
                     f'timeout {format_duration(spec.timeout)}{command}')
        pipes = {}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would write what is buffered here once more
            pipes[stream] = os.pipe()
        read_ends = [read_end for read_end, _ in pipes.values()]
        # Forked before anything starts a thread (Sentry's transport starts below).
        pid = process.fork(lambda: child.run_command(spec.argv, pipes[sys.stdout][1], pipes[sys.stderr][1],
                                                     read_ends, self.record.lock))
        for _, write_end in pipes.values():
            os.close(write_end)
        self.child = Bounded(pid, {read_end: stream.buffer for stream, (read_end, _) in pipes.items()},
                             time.monotonic(), spec.timeout)
        sentry = SentryReport(spec, self.line)
        sentry.started()
        previous = {sig: signal.signal(sig, self._interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            self._watch()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._finish(sentry)

    def _watch(self):
        """Passes output through until the job ends; stops it past its timeout, or when its
        lock is lost for good."""
        job = self.child
        selector = selectors.DefaultSelector()
        for fd in job.open:
            selector.register(fd, selectors.EVENT_READ)
        lock = LockKeeper(self, job.started)
        next_beat = job.started + HEARTBEAT_SECONDS
        while True:
            if selector.get_map():
                for key, _ in selector.select(timeout=0.5):
                    if not job.read(key.fd):
                        selector.unregister(key.fd)
            else:
                time.sleep(0.1)  # the job closed its output but may still run: its timeout holds
            now = time.monotonic()
            if job.exit_status is None:
                pid, wait_status = os.waitpid(job.pid, os.WNOHANG)
                if pid:
                    job.exited(process.exit_status(wait_status), now)
            if job.exit_status is not None and (not job.open or now >= job.exited_at + DRAIN_SECONDS):
                break
            if now >= next_beat:
                next_beat = now + lock.beat(now)
            stopping = job.bound(now)
            if stopping == 'timeout':
                self.say.err(f'jobs: {self.spec.name} run {self.record.pk} passed its timeout of '
                             f'{format_duration(self.spec.timeout)}: stopping it (SIGTERM)')
            elif stopping:
                self.say.err(f'jobs: {self.spec.name} run {self.record.pk}: {stopping}: stopping it (SIGTERM)')
        selector.close()
        job.close()

    def _finish(self, sentry):
        spec, record, job = self.spec, self.record, self.child
        outcome, status, output = job.outcome, job.status, job.output
        summary = output.summary
        stopped_because = job.stopped_because or (f'interrupted by {self.interrupted_by}'
                                                  if self.interrupted_by else None)
        if stopped_because and not job.timed_out:
            summary = f'{stopped_because}' + (f'; {summary}' if summary else '')
        exit_status = status
        try:
            finished = _retrying(lambda: history.finish(record, outcome, status, summary=summary,
                                                        output_tail=output.tail))
            if not finished:
                self.say.err(f'jobs: {spec.name} run {record.pk}: another run had recorded it lost; '
                             f'it ended {outcome}')
        except DatabaseError as error:
            self.say.err(f'jobs: {spec.name} run {record.pk}: its end could not be recorded: {one_line(error)}')
            exit_status = status or 1
        sentry.finished(record, outcome, summary, output.tail)
        _tell(spec, self.say)
        ended = (f'jobs: {spec.name} run {record.pk} {outcome} in {record.duration:.1f} s'
                 if record.duration is not None else f'jobs: {spec.name} run {record.pk} {outcome}')
        fields = {'outcome': str(outcome), 'duration': record.duration, 'exit_status': status}
        if outcome == Outcome.SUCCEEDED:
            self.say.out(ended, **fields)
        else:
            self.say.err(f'{ended}, exit status {status}' + (f': {summary}' if summary else ''), logging.ERROR,
                         **fields)
        return exit_status

    def _interrupt(self, signum, frame):
        """SIGTERM or SIGINT to the runner: passed on to the job, whose end is recorded."""
        self.interrupted_by = signal.Signals(signum).name
        self.child.signal(signal.SIGTERM)


class LockKeeper:
    """The run's heartbeat, and its lock kept through a lost database connection.

    On PostgreSQL the lock lives on the runner's connection. When a heartbeat fails, the
    connection is closed and the lock is gone with it; from then on the runner reconnects
    every RETAKE_EVERY, writes its heartbeat (so that a run started meanwhile sees this one
    alive and stands back) and takes the lock again. It stops its job when it cannot: when
    another process holds the lock, when another run has recorded this one lost, or when
    STOP_WITHOUT_LOCK passes without a heartbeat, well before others take it for lost."""

    def __init__(self, supervisor, now):
        self.supervisor = supervisor
        self.last_beat = now
        self.lost_at = None     # when its lock was lost, while it is
        self.refusals = 0

    def beat(self, now):
        """Beats; returns the seconds to the next beat."""
        supervisor = self.supervisor
        name, pk = supervisor.spec.name, supervisor.record.pk
        try:
            if not history.heartbeat(supervisor.record):
                supervisor.child.stop('another run recorded this one lost and took its place')
                return HEARTBEAT_SECONDS
            self.last_beat = now
            if self.lost_at is not None:
                if not supervisor.lock.acquire():
                    self.refusals += 1
                    if self.refusals >= RETAKE_REFUSALS:
                        supervisor.child.stop(f'its lock, lost with its database connection, is held by '
                                              f'another process now: {supervisor.lock}')
                    return RETAKE_EVERY
                supervisor.say.err(f'jobs: {name} run {pk}: took its lock again, '
                                   f'{format_duration(now - self.lost_at)} after losing it')
                self.lost_at, self.refusals = None, 0
        except DatabaseError as error:
            supervisor.say.err(f'jobs: {name} run {pk}: heartbeat not recorded: {one_line(error)}')
            connection.close()  # the next beat reconnects
            if supervisor.lock.held_by_connection and self.lost_at is None:
                supervisor.lock.lost()
                self.lost_at = now
                supervisor.say.err(f'jobs: {name} run {pk}: its {supervisor.lock} went with the connection; '
                                   'taking it again')
        if self.lost_at is None:
            return HEARTBEAT_SECONDS
        if now - self.last_beat >= STOP_WITHOUT_LOCK:
            silent = format_duration(now - self.last_beat)
            supervisor.child.stop(f'without its lock or a heartbeat for {silent} (database unreachable)')
        return RETAKE_EVERY


def _tell(spec, say):
    """Records a change of the job's state this run made (failing, recovered) and sends it
    (JOBS_NOTIFY): at once, not at the next check. Never the job's failure: a channel or
    the database that fails here is a line, and the next check tries again."""
    try:
        if alerts.after_run(spec) and notify.configured():
            notify.send_due(say)
    except Exception as error:
        say.err(f'jobs: {spec.name}: its notification waits for the next check: {type(error).__name__}: '
                f'{one_line(error)}')


def _retrying(write, seconds=30.0):
    """write(), tried again on a database error (a connection lost) for up to seconds."""
    give_up = time.monotonic() + seconds
    while True:
        try:
            return write()
        except DatabaseError:
            connection.close()
            if time.monotonic() >= give_up:
                raise
            time.sleep(RETAKE_EVERY)


def _process_started_at():
    """When this process started, to 10 ms on Linux (the cron tick it was started for):
    its age is read from the kernel, against the boot-time clock, so no clock is guessed."""
    try:
        with open('/proc/self/stat') as stat:
            fields = stat.read().rsplit(')', 1)[1].split()
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - int(fields[19]) / os.sysconf('SC_CLK_TCK')
        return datetime.fromtimestamp(time.time() - age, UTC)
    except (OSError, ValueError, IndexError, AttributeError):
        return datetime.now(UTC)

