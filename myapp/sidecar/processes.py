"""The cron program's children: each started from a fresh executable (no fork of this
process runs Python code), each reaped by this loop alone, and orphans reaped too.

The program is a child subreaper (Linux): a process that a job leaves behind is handed to
it, not to PID 1, and reaped here, so no zombie piles up whether or not the program is
the container's PID 1.
"""
import os
import sys
from pathlib import Path

from django.conf import settings

from myapp.supervision import process as supervised


class Processes:
    def __init__(self):
        self.children = {}      # pid: (Popen, what it is, called with its exit status when it ends)

    def become_subreaper(self):
        supervised.become_subreaper()  # elsewhere than on Linux orphans go to PID 1, as usual

    def start(self, argv, what, on_exit=None, env=None, drop_env=(), stop_with_program=False, **popen):
        """Starts argv as a child in a process group of its own (as supercronic starts its
        jobs: a Ctrl-C meant for the program does not reach them), with this environment
        and env, less the variables in drop_env. stop_with_program: the child gets SIGTERM
        should the program die without stopping it (killed, say)."""
        environment = {key: value for key, value in {**os.environ, **(env or {})}.items() if key not in drop_env}
        process = supervised.spawn(argv, environment, stop_with_parent=stop_with_program, **popen)
        self.children[process.pid] = (process, what, on_exit)
        return process

    def start_manage(self, words, what, on_exit=None, env=None, **options):
        """Starts `manage.py WORDS...` with this Python, from the app's folder."""
        manage = Path(settings.BASE_DIR) / 'manage.py'
        return self.start([sys.executable, str(manage), *words], what, on_exit, env, cwd=settings.BASE_DIR,
                          **options)

    def start_job(self, spec, what, env=None, on_exit=None):
        """Starts `manage.py jobs run` for the job spec."""
        return self.start_manage(['jobs', 'run', *spec.run_words()], what, on_exit, env)

    def reap(self):
        """Collects every child that has ended, ours or orphans handed to us."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid in self.children:
                process, what, on_exit = self.children.pop(pid)
                process.returncode = os.waitstatus_to_exitcode(status)
                if on_exit:
                    on_exit(process.returncode)

    def running(self):
        return [what for _, what, _ in self.children.values()]
