"""Whether the supervisor of a run (a job's runner, a task's worker) still lives: it writes
a heartbeat every HEARTBEAT; silent for LOST_AFTER, it is taken for dead (killed, or its
machine gone) and what it ran for lost."""
import os
import socket
from datetime import timedelta

HEARTBEAT = timedelta(seconds=15)
LOST_AFTER = timedelta(seconds=60)


def this_host():
    # In a container the host name is the container's id; compose sets HOSTNAME to it too.
    return os.environ.get('HOSTNAME') or socket.gethostname()


def silent(heard_at, now):
    """The lost rule: not heard from (heard_at, its last heartbeat, or None) for LOST_AFTER."""
    return heard_at is None or heard_at < now - LOST_AFTER


def pid_alive(pid):
    """Whether a process of this host's pid namespace has this pid (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True
