"""The job itself, in a process forked from the runner (myapp/supervision/process.py: its own
process group, killed with the runner): Django is set up already, so the
job starts at once instead of paying a second start-up."""
import os
import signal
import sys
import traceback

from myapp.jobs.locks import held_by_runner

# The runner's database connections, inherited by the fork. The job must neither use nor
# close them (closing one would end the runner's session, and its advisory lock with it):
# they are set aside here and never collected, since the child ends with os._exit.
_inherited_connections = []


def run_command(argv, stdout_fd, stderr_fd, runner_fds, lock):
    """Runs `manage.py ARGV` with its output on the given pipes, then ends the process with
    the command's exit status; lock: the lock its runner holds for it, which the command
    does not take a second time. Never returns."""
    status = 1
    try:
        for fd in runner_fds:
            os.close(fd)
        os.dup2(stdout_fd, 1)
        os.dup2(stderr_fd, 2)
        os.close(stdout_fd)
        os.close(stderr_fd)
        sys.stdout.reconfigure(line_buffering=True)
        sys.stderr.reconfigure(line_buffering=True)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _set_aside_database_connections()
        held_by_runner(lock)
        status = _execute(argv)
    except BaseException:
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)


def _execute(argv):
    from django.core.management import ManagementUtility

    try:
        ManagementUtility(['manage.py', *argv]).execute()
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)
        return 1
    return 0


def _set_aside_database_connections():
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        if connection.connection is not None:
            _inherited_connections.append(connection.connection)
            connection.connection = None
