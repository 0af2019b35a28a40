"""Starting a supervised child: in a process group of its own (a timeout stops whatever it
started too, and a Ctrl-C meant for its parent does not reach it), ended by the kernel when
its parent dies (Linux), and its exit status read as a shell reads it."""
import ctypes
import os
import signal
import subprocess
import threading

PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36


def _prctl(option, value):
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value)
        return True
    except (AttributeError, OSError):
        return False  # not Linux


def die_with_parent(parent_pid, sig=signal.SIGKILL):
    """Asks the kernel for sig when the parent dies; ends at once if it has died already."""
    if _prctl(PR_SET_PDEATHSIG, sig) and os.getppid() != parent_pid:
        os._exit(1)


def become_subreaper():
    """Orphans of our children are handed to this process, not to PID 1 (Linux)."""
    _prctl(PR_SET_CHILD_SUBREAPER, 1)


def fork(child):
    """Forks; the child calls child() in its own process group, killed with this process,
    and must never return (it ends with os._exit). Returns the child's pid.

    A process forked while another thread runs may inherit a lock that thread held and wait
    on it for ever: refused."""
    if threading.active_count() > 1:
        raise RuntimeError(f'would fork with threads running: {threading.enumerate()}')
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:
        try:
            os.setpgid(0, 0)
            die_with_parent(parent)
            child()
        finally:
            os._exit(1)
    return pid


def spawn(argv, env, stop_with_parent=False, **popen):
    """Starts argv from a fresh executable in a process group of its own; stop_with_parent:
    it gets SIGTERM should this process die without stopping it."""
    # preexec_fn runs in the forked child before exec: safe, as the callers start no thread.
    preexec = (lambda: _prctl(PR_SET_PDEATHSIG, signal.SIGTERM)) if stop_with_parent else None
    return subprocess.Popen(argv, env=env, process_group=0, preexec_fn=preexec, **popen)


def exit_status(wait_status):
    """A wait status as a shell's $?: the exit code, or 128 + N for signal N."""
    return shell_status(os.waitstatus_to_exitcode(wait_status))


def shell_status(code):
    """An exit code as Python gives it (-N for signal N) as a shell's $?."""
    return code if code >= 0 else 128 - code


def signal_group(pid, sig):
    """sig to the process group the child leads; nothing when it has gone."""
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
