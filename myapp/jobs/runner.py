"""`jobs run`'s engine: lock the job, record it, run it in a forked child, pass its output
through, stop it past its timeout, record how it ended, report it.

Exit status: the job's own; 124 when it timed out (as timeout(1) does); 128 + N when a
signal N killed it; 0 when it was skipped because another run had it in hand.
"""
import os
import selectors
import signal
import sys
import time
from datetime import UTC, datetime

from django.db import DatabaseError, connection

from myapp.failures import one_line
from myapp.jobs import child, history, run_now, schedule
from myapp.jobs.locks import job_lock
from myapp.jobs.output import Output
from myapp.jobs.sentry import SentryReport
from myapp.jobs.timing import format_duration, format_moment
from myapp.models import JobRun

Outcome, Trigger = JobRun.Outcome, JobRun.Trigger
KILL_GRACE = 10.0          # seconds between SIGTERM and SIGKILL for a job past its timeout
TIMED_OUT_STATUS = 124
# How long output may still come once the job has exited (from processes it left behind).
DRAIN_SECONDS = 2.0


def run(spec, trigger=Trigger.MANUAL, tick=None, say=None, request_id=None):
    """Runs the job spec once; returns the exit status for `jobs run`. request_id: the Run
    now request this run serves, linked to the run (or to the skipped run) it records."""
    say = say or Say()

    def recorded(record):
        if request_id is not None:
            run_now.link(request_id, record)
        return record

    def skipped(reason):
        recorded(history.skip(spec, trigger, reason, tick))
        say.out(f'jobs: {spec.name} {reason}')
        return 0

    line = schedule.line_running_here(spec.name)
    if trigger == Trigger.SCHEDULE and tick is None and line is not None:
        tick = line.schedule.previous_before(_process_started_at())
    lock = job_lock(spec.name)
    if not lock.acquire():
        holder = history.holder(spec.name)
        reason = f'skipped: another process holds the {lock}'
        if holder:
            reason = (f'skipped: run {holder.pk} of {spec.name} is running on host {holder.host}, '
                      f'pid {holder.pid}, since {format_moment(holder.started_at)}')
        return skipped(reason)
    try:
        lost = history.mark_lost(spec.name)
        if lost:
            say.err(f'jobs: {spec.name}: {lost} earlier run(s) whose runner died are now recorded as lost')
        if tick is not None and trigger == Trigger.SCHEDULE:
            done = history.ran_for_tick(spec.name, tick)
            if done:
                return skipped(f'skipped: run {done.pk} on host {done.host} already ran the {format_moment(tick)} run')
        if trigger == Trigger.CATCH_UP and history.ran_since(spec.name, tick):
            say.out(f'jobs: {spec.name}: no catch-up needed, the {format_moment(tick)} run has been done')
            return 0
        record = recorded(history.start(spec, trigger, tick))
        return Supervisor(spec, record, line, say).supervise()
    finally:
        lock.release()


class Say:
    """The runner's own lines, beside the job's output."""

    def out(self, line):
        sys.stdout.write(line + '\n')
        sys.stdout.flush()

    def err(self, line):
        sys.stderr.write(line + '\n')
        sys.stderr.flush()


class Supervisor:
    """Runs one recorded run's job in a child process and sees it to its end."""

    def __init__(self, spec, record, line, say):
        self.spec, self.record, self.say = spec, record, say
        self.line = line
        self.interrupted_by = None
        self.child_pid = None

    def supervise(self):
        spec, record = self.spec, self.record
        command = f': {spec.command_line}' if spec.name != spec.command_line else ''
        self.say.out(f'jobs: {spec.name} run {record.pk} started on host {record.host}, pid {record.pid}, '
                     f'timeout {format_duration(spec.timeout)}{command}')
        pipes = {}
        for stream in (sys.stdout, sys.stderr):
            stream.flush()  # or the child would write what is buffered here once more
            pipes[stream] = os.pipe()
        self.child_pid = os.fork()
        if self.child_pid == 0:
            child.run_command(spec.argv, pipes[sys.stdout][1], pipes[sys.stderr][1],
                              [read_end for read_end, _ in pipes.values()])
        for _, write_end in pipes.values():
            os.close(write_end)
        output = Output({read_end: stream.buffer for stream, (read_end, _) in pipes.items()})
        sentry = SentryReport(spec, self.line)
        sentry.started()
        previous = {sig: signal.signal(sig, self._interrupt) for sig in (signal.SIGTERM, signal.SIGINT)}
        try:
            status, timed_out = self._watch(output)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return self._finish(status, timed_out, output, sentry)

    def _watch(self, output):
        """Passes output through until the job ends; stops it past its timeout."""
        selector = selectors.DefaultSelector()
        for fd in output.streams:
            selector.register(fd, selectors.EVENT_READ)
        started = time.monotonic()
        deadline = started + self.spec.timeout
        next_beat = started + history.HEARTBEAT.total_seconds()
        status = exited_at = kill_at = None
        timed_out = False
        while True:
            if selector.get_map():
                for key, _ in selector.select(timeout=0.5):
                    data = os.read(key.fd, 65536)
                    if data:
                        output.feed(key.fd, data)
                    else:
                        selector.unregister(key.fd)
                        os.close(key.fd)
            else:
                time.sleep(0.1)  # the job closed its output but may still run: its timeout holds
            now = time.monotonic()
            if status is None:
                status = self._reap()
                if status is not None:
                    exited_at = now
            if status is not None and (not selector.get_map() or now >= exited_at + DRAIN_SECONDS):
                break
            if status is None and not timed_out and now >= deadline:
                timed_out = True
                kill_at = now + KILL_GRACE
                self.say.err(f'jobs: {self.spec.name} run {self.record.pk} passed its timeout of '
                             f'{format_duration(self.spec.timeout)}: stopping it (SIGTERM)')
                self._signal(signal.SIGTERM)
            if status is None and kill_at is not None and now >= kill_at:
                self._signal(signal.SIGKILL)
                kill_at = None
            if now >= next_beat:
                next_beat = now + history.HEARTBEAT.total_seconds()
                self._heartbeat()
        for fd in list(selector.get_map()):
            selector.unregister(fd)
            os.close(fd)
        output.close()
        return status, timed_out

    def _finish(self, status, timed_out, output, sentry):
        spec, record = self.spec, self.record
        if timed_out:
            outcome, status = Outcome.TIMED_OUT, TIMED_OUT_STATUS
        elif status == 0:
            outcome = Outcome.SUCCEEDED
        else:
            outcome = Outcome.FAILED
        summary = output.summary
        if self.interrupted_by and not timed_out:
            summary = f'interrupted by {self.interrupted_by}' + (f'; {summary}' if summary else '')
        exit_status = status
        try:
            history.finish(record, outcome, status, summary=summary, output_tail=output.tail)
        except DatabaseError as error:
            self.say.err(f'jobs: {spec.name} run {record.pk}: its end could not be recorded: {one_line(error)}')
            exit_status = status or 1
        sentry.finished(record, outcome, summary, output.tail)
        ended = (f'jobs: {spec.name} run {record.pk} {outcome} in {record.duration:.1f} s'
                 if record.duration is not None else f'jobs: {spec.name} run {record.pk} {outcome}')
        if outcome == Outcome.SUCCEEDED:
            self.say.out(ended)
        else:
            self.say.err(f'{ended}, exit status {status}' + (f': {summary}' if summary else ''))
        return exit_status

    def _reap(self):
        """The child's exit status once it has ended (128 + N for signal N), else None."""
        pid, wait_status = os.waitpid(self.child_pid, os.WNOHANG)
        if pid == 0:
            return None
        code = os.waitstatus_to_exitcode(wait_status)
        return code if code >= 0 else 128 - code

    def _signal(self, sig):
        try:
            os.killpg(self.child_pid, sig)
        except ProcessLookupError:
            pass

    def _interrupt(self, signum, frame):
        """SIGTERM or SIGINT to the runner: passed on to the job, whose end is recorded."""
        self.interrupted_by = signal.Signals(signum).name
        self._signal(signal.SIGTERM)

    def _heartbeat(self):
        try:
            history.heartbeat(self.record)
        except DatabaseError as error:
            self.say.err(f'jobs: {self.spec.name} run {self.record.pk}: heartbeat not recorded: {one_line(error)}')
            connection.close()  # the next beat reconnects


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

