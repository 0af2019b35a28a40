"""What the TOM's pages weigh and how long they take to load, in Debian's Chromium on a
network that reaches only the TOM: bytes the TOM served for each page, its requests, the
requests that tried to leave 127.0.0.1 (aborted and counted), and the time to the page's
load event (median of --loads).

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


def measure(page, url, loads):
    """(bytes served by the TOM, its requests, requests that tried to leave, median load ms)."""
    weights, times = [], []
    for _ in range(loads):
        page.served, page.requests, page.left = 0, 0, 0
        started = time.perf_counter()
        page.goto(url, wait_until='load', timeout=120_000)
        times.append((time.perf_counter() - started) * 1000)
        page.wait_for_timeout(300)  # late requests (scripts that load more)
        weights.append((page.served, page.requests, page.left))
    return (*weights[-1], statistics.median(times))


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
                     ('observations', '/observations/'), ('data', '/dataproducts/data/'),
                     ('jobs', '/jobs/'), ('job save_data', '/jobs/save_data/')]
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=chromium(), args=CHROMIUM_ARGS)
                page = browser.new_page(viewport={'width': 1280, 'height': 900})

                def route(route):
                    if urlsplit(route.request.url).hostname != '127.0.0.1':
                        page.left += 1
                        return route.abort()
                    page.requests += 1
                    return route.continue_()

                def response(answer):
                    if urlsplit(answer.url).hostname == '127.0.0.1':
                        try:
                            page.served += len(answer.body())
                        except Exception:
                            pass  # a redirect has no body

                page.served = page.requests = page.left = 0
                page.route('**/*', route)
                page.on('response', response)
                page.goto(f'{origin}/accounts/login/')
                page.fill('input[name="login"]', USER)
                page.fill('input[name="password"]', PASSWORD)
                page.click('form button[type="submit"]')
                page.wait_for_url(lambda url: '/accounts/login/' not in url)
                print(f'{"page":<32} {"bytes":>12} {"requests":>9} {"left 127.0.0.1":>15} {"load (ms)":>10}')
                for name, path in pages:
                    served, requests, left, load = measure(page, origin + path, arguments.loads)
                    print(f'{name:<32} {served:>12,} {requests:>9} {left:>15} {load:>10.0f}')
                browser.close()
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == '__main__':
    main()
