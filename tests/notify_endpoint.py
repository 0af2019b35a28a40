"""Channels that receive notifications on 127.0.0.1, as real ones would: an HTTP endpoint
taking Apprise's `json://` posts, and an SMTP server (aiosmtpd) taking e-mail."""
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.conftest import free_port


class JsonEndpoint:
    """Collects the JSON bodies posted to it; answers `status` (200 unless told otherwise)."""

    def __init__(self):
        self.posts, self.status = [], 200
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get('Content-Length') or 0)
                if endpoint.status == 200:
                    endpoint.posts.append(json.loads(self.rfile.read(length) or b'{}'))
                self.send_response(endpoint.status)
                self.send_header('Content-Length', '0')
                self.end_headers()

        self.server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def apprise_url(self):
        return f'json://127.0.0.1:{self.server.server_address[1]}/notify'

    def titles(self):
        return [post.get('title', '') for post in self.posts]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class SmtpServer:
    """aiosmtpd on 127.0.0.1, keeping each message it receives."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        server = self

        class Handler:
            async def handle_DATA(self, smtp, session, envelope):
                server.messages.append((envelope.rcpt_tos, envelope.content.decode('utf-8', 'replace')))
                return '250 OK'

        self.port = free_port()
        self.controller = Controller(Handler(), hostname='127.0.0.1', port=self.port)
        self.controller.start()

    @property
    def url(self):
        """As EMAIL_URL takes it."""
        return f'smtp://127.0.0.1:{self.port}'

    def stop(self):
        self.controller.stop()
