"""An LCO portal and archive on 127.0.0.1 that fails, stalls and drags on demand.

It speaks the API shapes TOM Toolkit's LCO facility uses (see tom_observations/facilities/
ocs.py): request state and observation blocks from the portal, a paginated frame listing
and file downloads from the archive. Tests drive it in-process; `python tests/fake_lco.py`
serves a fixed set of observations for the container tests. Standard library only.
"""
import argparse
import hashlib
import json
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit


@dataclass
class Frame:
    id: int
    filename: str
    size: int

    def content(self):
        """Deterministic bytes, so a test can check a stored file against what was served."""
        seed = hashlib.sha256(str(self.id).encode()).digest()
        return (seed * (self.size // len(seed) + 1))[:self.size]


@dataclass
class Fault:
    kind: str           # status | stall | bad_json | slow | stall_after | truncate | gate
    value: float = 0    # status code, seconds between chunks, or bytes sent before stalling
    times: int = -1     # how many requests it spoils; -1 means all of them
    retry_after: str | None = None  # a Retry-After header for a `status` answer


@dataclass
class ObservationRequest:
    id: int
    state: str
    frames: list = field(default_factory=list)


class FakeLCO:
    def __init__(self, api_key='test-key', page_size=2, port=0, host='127.0.0.1', latency=0.0, keep_alive=False):
        self.api_key = api_key
        self.page_size = page_size
        self.latency = latency  # seconds every answer waits, as a distant archive's would
        self.requests = {}
        self.frames = {}        # frame id: Frame
        self.faults = {}
        self.hits = []
        self.hit_times = []     # (time.monotonic(), kind, key) of each request
        self.released = threading.Event()  # set on stop: frees every stalled handler
        self.gate = threading.Event()      # a `gate` fault answers normally once this is set
        self.waiting_at_gate = 0           # requests a `gate` fault holds right now
        self._next_frame = 1000
        self._lock = threading.Lock()
        handler = _handler(self)
        if keep_alive:  # HTTP/1.1: a client may reuse its connections, as real archives allow
            handler.protocol_version = 'HTTP/1.1'
            # Head and body go out as two writes: without this, Nagle's algorithm holds the
            # body back until the client's delayed ACK of the head, some 40 ms per answer.
            handler.disable_nagle_algorithm = True
        self.server = ThreadingHTTPServer((host, port), handler)
        self.server.daemon_threads = True

    @property
    def url(self):
        host, port = self.server.server_address[:2]
        return f'http://{host}:{port}'

    def add_request(self, observation_id, state='COMPLETED', frames=2, size=2048):
        request = ObservationRequest(id=int(observation_id), state=state)
        for _ in range(frames):
            self._next_frame += 1
            name = f'ogg2m001-ep02-20261128-{self._next_frame:04d}-e91.fits.fz'
            request.frames.append(Frame(id=self._next_frame, filename=name, size=size))
            self.frames[self._next_frame] = request.frames[-1]
        self.requests[request.id] = request
        return request.frames

    def fault(self, kind, key, fault_kind, value=0, times=-1, retry_after=None):
        """Spoil requests for ('frames', observation id) or ('download', frame id)."""
        self.faults[(kind, int(key))] = Fault(fault_kind, value, times, retry_after)

    def count(self, kind, key):
        return self.hits.count((kind, int(key)))

    def take_fault(self, kind, key):
        with self._lock:
            self.hits.append((kind, key))
            self.hit_times.append((time.monotonic(), kind, key))
            fault = self.faults.get((kind, key))
            if fault is None or fault.times == 0:
                return None
            if fault.times > 0:
                fault.times -= 1
            return fault

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.released.set()
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def _handler(lco):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):
            pass

        def do_GET(self):
            if lco.latency:
                time.sleep(lco.latency)
            parts = urlsplit(self.path)
            path = [p for p in parts.path.split('/') if p]
            query = parse_qs(parts.query)
            try:
                if path[:1] == ['download'] and len(path) == 3:
                    return self.download(int(path[1]))
                if not self.authorized():
                    return self.send_json({'detail': 'Invalid token.'}, 401)
                if path == ['frames']:
                    return self.frames(int(query['REQNUM'][0]), query)
                if path[:2] == ['api', 'requests'] and len(path) in (3, 4):
                    return self.portal(int(path[2]), observations=len(path) == 4)
            except (KeyError, ValueError):
                return self.send_json({'detail': 'Bad request.'}, 400)
            self.send_json({'detail': 'Not found.'}, 404)

        def authorized(self):
            return not lco.api_key or self.headers.get('Authorization') == f'Token {lco.api_key}'

        def portal(self, request_id, observations):
            request = lco.requests.get(request_id)
            if request is None:
                return self.send_json({'detail': 'Not found.'}, 404)
            if not observations:
                return self.send_json({'id': request.id, 'state': request.state})
            block = {'id': request.id * 10, 'state': request.state,
                     'start': '2026-11-27T20:00:00Z', 'end': '2026-11-27T20:30:00Z'}
            self.send_json([block])

        def frames(self, reqnum, query):
            fault = lco.take_fault('frames', reqnum)
            if fault and not self.passed_gate(fault):
                return self.spoil(fault, b'{"results": [', 2 ** 20)
            request = lco.requests.get(reqnum)
            frames = request.frames if request else []
            limit = min(int(query.get('limit', ['100'])[0]), lco.page_size)
            offset = int(query.get('offset', ['0'])[0])
            page = frames[offset:offset + limit]
            base = f'http://{self.headers["Host"]}'
            following = None
            if offset + limit < len(frames):
                following = f'{base}/frames/?' + urlencode({'REQNUM': reqnum, 'limit': limit,
                                                              'offset': offset + limit})
            self.send_json({
                'count': len(frames),
                'next': following,
                'previous': None,
                'results': [{
                    'id': f.id, 'filename': f.filename, 'basename': f.filename.split('.')[0],
                    'DATE_OBS': '2026-11-27T20:10:00.000000Z', 'REQNUM': reqnum,
                    'url': f'{base}/download/{f.id}/{f.filename}',
                } for f in page],
            })

        def download(self, frame_id):
            frame = lco.frames.get(frame_id)
            fault = lco.take_fault('download', frame_id)
            if frame is None:
                return self.send_json({'detail': 'Not found.'}, 404)
            body = frame.content()
            if fault and not self.passed_gate(fault):
                return self.spoil(fault, body, len(body))
            self.send_body(body, 'application/octet-stream')

        def passed_gate(self, fault):
            """A `gate` fault holds the request until the test opens the gate, then lets it be
            answered normally (True); other faults are not gates (False)."""
            if fault.kind != 'gate':
                return False
            with lco._lock:
                lco.waiting_at_gate += 1
            try:
                while not (lco.gate.wait(0.05) or lco.released.is_set()):
                    pass
            finally:
                with lco._lock:
                    lco.waiting_at_gate -= 1
            return True

        def spoil(self, fault, body, length):
            """Answers the way the fault says instead of the normal answer."""
            if fault.kind == 'status':
                headers = {'Retry-After': fault.retry_after} if fault.retry_after is not None else {}
                self.send_json({'detail': 'Spoiled on purpose.'}, int(fault.value), headers)
            elif fault.kind == 'stall':
                lco.released.wait()
            elif fault.kind == 'bad_json':
                self.send_body(b'<html>not json', 'application/json')
            elif fault.kind in ('stall_after', 'truncate'):
                self.send_head(length, 'application/octet-stream')
                self.wfile.write(body[:int(fault.value)])
                self.wfile.flush()
                if fault.kind == 'stall_after':
                    lco.released.wait()
            elif fault.kind == 'slow':
                self.send_head(len(body), 'application/octet-stream')
                for start in range(0, len(body), 256):
                    self.wfile.write(body[start:start + 256])
                    self.wfile.flush()
                    if lco.released.wait(fault.value):
                        break

        def send_json(self, payload, status=200, headers=None):
            self.send_body(json.dumps(payload).encode(), 'application/json', status, headers)

        def send_body(self, body, content_type, status=200, headers=None):
            self.send_head(len(body), content_type, status, headers)
            self.wfile.write(body)

        def send_head(self, length, content_type, status=200, headers=None):
            self.send_response(status)
            self.send_header('Content-Type', content_type)
            self.send_header('Content-Length', str(length))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, default=8080)
    parser.add_argument('--api-key', default='test-key')
    parser.add_argument('--observation', type=int, action='append', default=[],
                        help='an id of a COMPLETED observation with two frames (repeatable)')
    args = parser.parse_args()
    lco = FakeLCO(api_key=args.api_key, port=args.port, host=args.host)
    for observation_id in args.observation:
        lco.add_request(observation_id)
    print(f'fake LCO serving {len(lco.requests)} observation(s) on {lco.url}', flush=True)
    # As a container's PID 1 it gets no default SIGTERM handling: stop when asked to.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    lco.server.serve_forever()


if __name__ == '__main__':
    main()
