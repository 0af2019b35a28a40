"""The ATLAS forced-photometry server on 127.0.0.1, as TOM Toolkit's `atlas_query` task
speaks to it (tom_dataproducts/tasks.py): POST /queue/ queues a job (201 with its URL), GET
of that URL reports it queued, started, then finished with a result_url, and the result is
ATLAS' text table. `finish_after`: how many reports say "started" before "finished"
(None: it never finishes); `hold_below`: a query from before this MJD never finishes either.
Tests drive it in-process; `python tests/fake_atlas.py` serves it for the container tests.
Standard library only.
"""
import argparse
import json
import signal
import sys
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

HEADER = '###MJD   m   dm  uJy   duJy F err chi/N   RA  Dec   x   y  maj  min   phi  apfit mag5sig Sky   Obs'


class FakeAtlas:
    def __init__(self, api_key='atlas-key', finish_after=0, points=3, host='127.0.0.1', port=0, public_url=None,
                 hold_below=0.0):
        self.api_key, self.finish_after, self.points, self.hold_below = api_key, finish_after, points, hold_below
        self.public_url = public_url  # the URL others reach it by, when not the address it binds
        self.jobs = []              # the query of each job queued, with its reports so far
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True

    @property
    def url(self):
        if self.public_url:
            return self.public_url.rstrip('/')
        host, port = self.server.server_address[:2]
        return f'http://{host}:{port}'

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def photometry(self, job):
        """The result table of a job: `points` detections from its mjd_min on, one per day."""
        start = float(job['mjd_min'])
        rows = [f'{start + day + 0.1:.5f} {17.5 + day / 10:.3f} 0.020 {360 - day * 10} 7 {"oc"[day % 2]} 0 1.1 '
                f'{job["ra"]} {job["dec"]} 100 200 2.0 1.9 10 -0.4 19.5 20.1 02a{int(start) + day}o0001'
                for day in range(self.points)]
        return '\n'.join([HEADER, *rows]) + '\n'

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self, status, body, content_type='application/json'):
                data = (json.dumps(body) if content_type == 'application/json' else body).encode()
                self.send_response(status)
                self.send_header('Content-Type', content_type)
                self.send_header('Content-Length', str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _authorized(self):
                if self.headers.get('Authorization') == f'Token {fake.api_key}':
                    return True
                self._answer(401, {'detail': 'Invalid token.'})
                return False

            def do_POST(self):
                if self.path.rstrip('/') != '/queue':
                    return self._answer(404, {'detail': 'Not found.'})
                if not self._authorized():
                    return None
                length = int(self.headers.get('Content-Length') or 0)
                form = {key: values[0] for key, values in parse_qs(self.rfile.read(length).decode()).items()}
                with fake.lock:
                    fake.jobs.append({**form, 'queued_at': _now(), 'reports': 0})
                    number = len(fake.jobs)
                return self._answer(201, {'url': f'{fake.url}/queue/{number}/'})

            def do_GET(self):
                parts = [part for part in self.path.split('/') if part]
                if len(parts) == 2 and parts[0] == 'queue' and parts[1].isdigit():
                    return self._report(int(parts[1])) if self._authorized() else None
                if len(parts) == 3 and parts[:2] == ['static', 'results']:
                    number = parts[2].removeprefix('job').removesuffix('.txt')
                    if number.isdigit() and 0 < int(number) <= len(fake.jobs):
                        return self._answer(200, fake.photometry(fake.jobs[int(number) - 1]), 'text/plain')
                return self._answer(404, {'detail': 'Not found.'})

            def _report(self, number):
                if not 0 < number <= len(fake.jobs):
                    return self._answer(404, {'detail': 'Not found.'})
                with fake.lock:
                    job = fake.jobs[number - 1]
                    job['reports'] += 1
                    finished = (fake.finish_after is not None and job['reports'] > fake.finish_after
                                and float(job.get('mjd_min', 0)) >= fake.hold_below)
                self._answer(200, {
                    'url': f'{fake.url}/queue/{number}/', 'timestamp': job['queued_at'],
                    'starttimestamp': job['queued_at'],
                    'finishtimestamp': _now() if finished else None,
                    'result_url': f'{fake.url}/static/results/job{number}.txt' if finished else None,
                })

        return Handler


def _now():
    return datetime.now(UTC).isoformat()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8081)
    parser.add_argument('--api-key', default='atlas-key')
    parser.add_argument('--public-url', help='the URL the TOM reaches it by (it names its results by it)')
    parser.add_argument('--hold-below', type=float, default=0.0, metavar='MJD',
                        help='queries from before this MJD never finish')
    arguments = parser.parse_args()
    fake = FakeAtlas(arguments.api_key, host=arguments.host, port=arguments.port, public_url=arguments.public_url,
                     hold_below=arguments.hold_below)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # (shutdown() here would wait on itself)
    print(f'fake ATLAS on {fake.url}', flush=True)
    fake.server.serve_forever()


if __name__ == '__main__':
    main()
