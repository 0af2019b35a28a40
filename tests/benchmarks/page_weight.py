"""What the TOM's pages weigh and how long they take to load, in Debian's Chromium on a
network that reaches only the TOM, as the browser counts them: the bytes it parsed for each
page and everything the page loaded, the bytes it downloaded on the first visit and again
with its cache (median of --loads visits), the page's requests, those that tried to leave
127.0.0.1 (aborted and counted), and the time to the end of the load event (median).

    .venv/bin/python tests/benchmarks/page_weight.py [--loads N] [--points N]

Serves the TOM with gunicorn on 127.0.0.1 from a throwaway SQLite database under a
temporary DATA_DIR, with a target whose light curve has --points photometry points, an
observation and a data product.
"""
import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.browser import CHROMIUM_ARGS, chromium  # noqa: E402

USER, PASSWORD = 'bench', 'bench-password-1'
SETUP = '''
from datetime import timedelta
from django.contrib.auth.models import User
from django.core.files.base import ContentFile
from django.utils import timezone
from tom_dataproducts.models import DataProduct, PhotometryReducedDatum
from tom_observations.models import ObservationRecord
from tom_targets.models import Target
User.objects.create_superuser("{user}", password="{password}")
t = Target.objects.create(name="SN 2026bench", type="SIDEREAL", ra=10.0, dec=-20.0)
ObservationRecord.objects.create(target=t, facility="LCORedirect", observation_id="9001", status="COMPLETED",
                                 parameters={{}})
start = timezone.now() - timedelta(days={points})
PhotometryReducedDatum.objects.bulk_create([PhotometryReducedDatum(
    target=t, timestamp=start + timedelta(days=i), brightness=17 + (i % 20) / 10, brightness_error=0.05,
    bandpass="gri"[i % 3], source_name="bench") for i in range({points})])
d = DataProduct.objects.create(product_id="bench-1", target=t, data_product_type="photometry")
d.data.save("bench.csv", ContentFile(b"time,filter,magnitude,error\\n60000.1,r,17.5,0.02\\n"))
print(t.pk, d.pk)
'''


def free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def manage(env, *args, **kwargs):
    return subprocess.run([sys.executable, str(REPO / 'manage.py'), *args], env=env, check=True, cwd=REPO,
                          **kwargs)


# What the browser itself counted for the page and everything it loaded (Resource Timing):
# bytes after decompression (what it parsed), bytes over the wire (0 for what its cache held),
# requests, and the time from navigation to the end of the load event.
TIMINGS = """() => {
    const entries = [performance.getEntriesByType('navigation')[0], ...performance.getEntriesByType('resource')];
    const sum = (field) => entries.reduce((total, entry) => total + entry[field], 0);
    return {parsed: sum('decodedBodySize'), transferred: sum('transferSize'), requests: entries.length,
            load: entries[0].loadEventEnd};
}"""


def measure(page, url, loads):
    """The page's first visit (nothing of it cached) and the median of `loads` visits again."""
    visits = []
    for _ in range(1 + loads):
        page.left = 0
        page.goto(url, wait_until='load', timeout=120_000)
        page.wait_for_timeout(300)  # late requests (scripts that load more)
        visits.append({**page.evaluate(TIMINGS), 'left': page.left})
    first, again = visits[0], visits[1:]
    return {'parsed': first['parsed'], 'first': first['transferred'],
            'again': statistics.median(v['transferred'] for v in again), 'requests': first['requests'],
            'left': first['left'], 'load': statistics.median(v['load'] for v in again)}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--loads', type=int, default=3)
    parser.add_argument('--points', type=int, default=300)
    arguments = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as data:
        port = free_port()
        env = {**os.environ, 'DATA_DIR': data, 'SECRET_KEY': 'benchmark-only', 'STATIC_ROOT': f'{data}/static',
               'DJANGO_SETTINGS_MODULE': 'mytom.settings', 'ALLOWED_HOSTS': '127.0.0.1', 'PYTHONUNBUFFERED': '1'}
        env.pop('DATABASE_URL', None)
        manage(env, 'migrate', '-v', '0')
        manage(env, 'collectstatic', '--no-input', '-v', '0')
        manage(env, 'jobs', 'loaded', str(REPO / 'crontab'), stdout=subprocess.DEVNULL)
        setup = SETUP.format(user=USER, password=PASSWORD, points=arguments.points)
        target, product = manage(env, 'shell', '-c', setup, capture_output=True, text=True).stdout.split()[-2:]
        server = subprocess.Popen([sys.executable, '-m', 'gunicorn', '--bind', f'127.0.0.1:{port}', '--workers', '2',
                                   'mytom.wsgi:application'], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        origin = f'http://127.0.0.1:{port}'
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(f'{origin}/health/', timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            pages = [('home', '/'), ('targets', '/targets/'), (f'target {target} (light curve)', f'/targets/{target}/'),
                     ('observations', '/observations/list/'), ('data', '/dataproducts/data/'),
                     ('jobs', '/jobs/'), ('job save_data', '/jobs/save_data/')]
            with sync_playwright() as playwright:
                # Every host but 127.0.0.1 unreachable: the browser's own DNS rule, not Playwright's
                # request interception, which would turn the browser's cache off.
                closed = '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'
                browser = playwright.chromium.launch(executable_path=chromium(), args=[*CHROMIUM_ARGS, closed])
                page = browser.new_page(viewport={'width': 1280, 'height': 900})

                def request(request):
                    url = urlsplit(request.url)  # data: and blob: URLs stay in the browser
                    if url.scheme not in ('data', 'blob') and url.hostname != '127.0.0.1':
                        page.left += 1

                page.left = 0
                page.on('request', request)
                page.goto(f'{origin}/accounts/login/')
                page.fill('input[name="login"]', USER)
                page.fill('input[name="password"]', PASSWORD)
                page.click('form button[type="submit"]')
                page.wait_for_url(lambda url: '/accounts/login/' not in url)
                print(f'{"page":<26} {"parsed bytes":>13} {"first visit":>12} {"again":>10} {"requests":>9} '
                      f'{"left":>5} {"load (ms)":>10}')
                for name, path in pages:
                    m = measure(page, origin + path, arguments.loads)
                    print(f'{name:<26} {m["parsed"]:>13,} {m["first"]:>12,} {m["again"]:>10,.0f} {m["requests"]:>9} '
                          f'{m["left"]:>5} {m["load"]:>10.0f}')
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == '__main__':
    main()
