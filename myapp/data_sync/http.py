"""The HTTP client of the sync engine: every request bounded in time, retried where safe,
shared by its worker threads over reused connections, and polite when an archive says
`429 Too Many Requests`."""
import threading
import time

from django.conf import settings
from requests import Session
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

# A Retry-After beyond this is not waited out: the request fails (the record is retried by the
# next run) rather than holding the job for longer than an hourly schedule allows.
MAX_RETRY_AFTER = 300
# Without a Retry-After, the waits after successive 429s (seconds).
BACKOFF_429 = (1, 4, 16)


class Pause:
    """A moment before which no request of the session starts: one 429 pauses every worker,
    not only the one that was told."""

    def __init__(self):
        self._until = 0.0
        self._lock = threading.Lock()

    def extend(self, seconds):
        with self._lock:
            self._until = max(self._until, time.monotonic() + seconds)

    def wait(self):
        while (left := self._until - time.monotonic()) > 0:
            time.sleep(left)


class BoundedAdapter(HTTPAdapter):
    """Applies TOM_HTTP_TIMEOUT to every request that does not set its own timeout, and waits
    out the archive's 429 answers (urllib3 would wait in the one thread that got it only)."""

    def __init__(self, timeout, retries, **kwargs):
        self.timeout = timeout
        self.retries_429 = retries
        self.pause = Pause()
        super().__init__(**kwargs)

    def send(self, request, timeout=None, **kwargs):
        for attempt in range(self.retries_429 + 1):
            self.pause.wait()
            response = super().send(request, timeout=timeout or self.timeout, **kwargs)
            if response.status_code != 429 or attempt == self.retries_429:
                return response
            delay = _retry_after(response, attempt)
            if delay is None:
                return response  # longer than we wait: the caller sees the 429
            response.close()
            self.pause.extend(delay)
        return response


def _retry_after(response, attempt):
    """Seconds the archive asks us to wait (a number or an HTTP date), None when too long."""
    backoff = BACKOFF_429[min(attempt, len(BACKOFF_429) - 1)]
    header = response.headers.get('Retry-After')
    if header is None:
        return backoff
    try:
        seconds = Retry().parse_retry_after(header)
    except Exception:  # urllib3 raises InvalidHeader for a value it cannot read
        return backoff
    return seconds if seconds <= MAX_RETRY_AFTER else None


def bounded_session(timeout=None, retries=None, connections=10):
    """A requests Session whose requests time out and retry refused connections and 502-504,
    keeping up to `connections` connections per host open for reuse by concurrent workers.

    The timeout bounds connecting and each wait for data, so a slow transfer that keeps
    moving completes while a stalled one fails. Read timeouts are not retried: a hung server
    costs one timeout, not several.
    """
    timeout = settings.TOM_HTTP_TIMEOUT if timeout is None else timeout
    retries = settings.TOM_HTTP_RETRIES if retries is None else retries
    retry = Retry(
        total=retries,
        connect=retries,
        read=0,
        status=retries,
        status_forcelist=(502, 503, 504),
        allowed_methods=frozenset({'GET', 'HEAD'}),
        backoff_factor=0.5,
        raise_on_status=False,
        respect_retry_after_header=False,  # 429s are the adapter's, for every worker at once
    )
    session = Session()
    adapter = BoundedAdapter(timeout, retries, max_retries=retry, pool_maxsize=connections)
    session.mount('http://', adapter)
    session.mount('https://', adapter)
    return session
