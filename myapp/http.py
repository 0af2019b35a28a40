"""The one HTTP client of our jobs: every request is bounded in time and retried where safe."""
from django.conf import settings
from requests import Session
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry


class BoundedAdapter(HTTPAdapter):
    """Applies TOM_HTTP_TIMEOUT to every request that does not set its own timeout."""

    def __init__(self, timeout, **kwargs):
        self.timeout = timeout
        super().__init__(**kwargs)

    def send(self, request, timeout=None, **kwargs):
        return super().send(request, timeout=timeout or self.timeout, **kwargs)


def bounded_session(timeout=None, retries=None):
    """A requests Session whose requests time out and retry refused connections and 502-504.

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
    )
    session = Session()
    adapter = BoundedAdapter(timeout, max_retries=retry)
    session.mount('http://', adapter)
    session.mount('https://', adapter)
    return session
