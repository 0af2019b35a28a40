"""The image's HEALTHCHECK, for either role of the image: in the cron container (where
supercronic is PID 1) `manage.py jobs check`, the overdue alarm; in the web container the
web server's /health/, which checks the database."""
import os
import sys
import urllib.request
from pathlib import Path


def running_cron():
    try:
        return b'supercronic' in Path('/proc/1/cmdline').read_bytes()
    except OSError:
        return False


if running_cron():
    manage = Path(__file__).resolve().parent.parent / 'manage.py'
    os.execv(sys.executable, [sys.executable, str(manage), 'jobs', 'check'])

port = os.environ.get('WEB_BIND', '0.0.0.0:8000').rsplit(':', 1)[-1]
url = f'http://127.0.0.1:{port}/health/'
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as error:
    print(f'unhealthy: {url}: {error}', file=sys.stderr)
    sys.exit(1)
