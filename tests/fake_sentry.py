"""Sentry's ingest on 127.0.0.1: takes the envelopes the real sentry-sdk transport posts and
keeps their items (events, check-ins) for the tests to read. Standard library only."""
import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class FakeSentry:
    project = 42

    def __init__(self):
        self.items = []   # (item type, payload dict)
        self.paths = []   # of every request, whatever it was
        self.server = ThreadingHTTPServer(('127.0.0.1', 0), _handler(self))
        self.server.daemon_threads = True

    @property
    def dsn(self):
        host, port = self.server.server_address[:2]
        return f'http://public-key@{host}:{port}/{self.project}'

    def of_type(self, kind):
        return [payload for item_type, payload in self.items if item_type == kind]

    def start(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _handler(sentry):
    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, format, *args):
            pass

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get('Content-Length', 0)))
            sentry.paths.append(self.path)
            if self.headers.get('Content-Encoding') == 'gzip':
                body = gzip.decompress(body)
            if self.path.rstrip('/') == f'/api/{sentry.project}/envelope':
                sentry.items.extend(_items(body))
            self.send_response(200)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', '2')
            self.end_headers()
            self.wfile.write(b'{}')

    return Handler


def _items(envelope):
    """(type, payload) of each item of an envelope: a header line, then per item a header
    line and a payload (its `length` bytes, or one line)."""
    rest = envelope.split(b'\n', 1)[1] if b'\n' in envelope else b''
    items = []
    while rest.strip():
        header_line, rest = rest.split(b'\n', 1)
        header = json.loads(header_line)
        if 'length' in header:
            payload, rest = rest[:header['length']], rest[header['length'] + 1:]
        else:
            payload, _, rest = rest.partition(b'\n')
        try:
            items.append((header.get('type'), json.loads(payload)))
        except ValueError:
            items.append((header.get('type'), {'raw': payload.decode('utf-8', 'replace')}))
    return items
