"""The image's HEALTHCHECK, for each role of the image (`healthcheck.py cron|worker|web`;
without an argument, cron when the container runs the cron program or the task worker as
PID 1).

cron: the state the cron program keeps (myapp/sidecar/health_file.py): unhealthy while a job
is overdue, a crontab line is a problem or the queued tasks wait past TASKS_MAX_WAIT (the
rule and lines of `jobs check`), or when the program has gone silent. worker (`tasks work`,
Kubernetes' task worker): the same file, in which that program keeps only its heartbeat.
Nothing but the standard library is loaded: run it as `python3 -I -S`, it costs a few
milliseconds. web: the web server's /health/, which checks the database.
"""
import os
import sys

# os.path, not pathlib: pathlib would import re, fnmatch and urllib.parse, a third of the
# check's cost, paid every 30 s.
APP = os.path.dirname(os.path.dirname(os.path.realpath(__file__)))


def role():
    if len(sys.argv) > 1:
        return sys.argv[1]
    try:
        with open('/proc/1/cmdline', 'rb') as cmdline:
            command = cmdline.read()
        return 'cron' if b'jobs\0cron' in command or b'tasks\0work' in command else 'web'
    except OSError:
        return 'web'


def cron():
    sys.path.insert(0, APP)
    from myapp.sidecar import health_file

    healthy, lines = health_file.verdict(health_file.path())
    print('\n'.join(lines), file=sys.stdout if healthy else sys.stderr)
    return 0 if healthy else 1


def web():
    import urllib.request

    port = os.environ.get('WEB_BIND', '0.0.0.0:8000').rsplit(':', 1)[-1]
    url = f'http://127.0.0.1:{port}/health/'
    try:
        with urllib.request.urlopen(url, timeout=4) as response:
            return 0 if response.status == 200 else 1
    except Exception as error:
        print(f'unhealthy: {url}: {error}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(cron() if role() in ('cron', 'worker') else web())
