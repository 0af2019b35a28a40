"""The file in which the cron container's program keeps its state for the health check:
its heartbeat and the overdue verdict of `jobs check`, recomputed every half minute.

Standard library only: the container's health check (docker/healthcheck.py) reads it in a
Python started without site-packages and without Django, in a few milliseconds.
"""
import json
import os
import time

DEFAULT_PATH = '/tmp/tom-cron-health.json'
# The program writes its heartbeat every HEARTBEAT seconds and checks the jobs every CHECK
# seconds; the health check fails when either is older than its limit here.
HEARTBEAT = 10
CHECK = 30
HEARTBEAT_STALE_AFTER = 60
CHECK_STALE_AFTER = 3 * CHECK


def path():
    return os.environ.get('CRON_HEALTH_FILE') or DEFAULT_PATH


def write(target, checked_at, lines, verdict, error=''):
    """Replaces the state at target (a rename: a reader never sees half a file).
    lines: the overdue and problem lines; verdict: `jobs check`'s last line."""
    state = {'pid': os.getpid(), 'heartbeat': time.time(), 'checked_at': checked_at,
             'lines': lines, 'verdict': verdict, 'error': error}
    partial = f'{target}.{os.getpid()}.tmp'
    with open(partial, 'w') as out:
        json.dump(state, out)
    os.replace(partial, target)


def verdict(source, now=None):
    """(healthy, the lines saying why) from the state at source."""
    now = time.time() if now is None else now
    try:
        with open(source) as state_file:
            state = json.load(state_file)
    except (OSError, ValueError) as error:
        return False, [f'no state from the cron program in {source}: {error}']
    silent = now - state['heartbeat']
    if silent > HEARTBEAT_STALE_AFTER:
        return False, [f'the cron program (pid {state["pid"]}) has not been heard from for {silent:.0f} s']
    if state['checked_at'] is None:
        return False, ['the cron program has not checked the jobs yet' + _because(state['error'])]
    unchecked = now - state['checked_at']
    if unchecked > CHECK_STALE_AFTER:
        return False, [f'the cron program last checked the jobs {unchecked:.0f} s ago' + _because(state['error'])]
    return not state['lines'], [*state['lines'], state['verdict']]


def _because(error):
    return f': {error}' if error else ''
