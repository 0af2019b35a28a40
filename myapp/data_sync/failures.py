"""Why a record's data could not be listed, fetched or stored, in one line."""
import json

import requests
from urllib3.exceptions import MaxRetryError, ReadTimeoutError

from myapp.failures import one_line


class ProductError(Exception):
    """A record's data could not be listed or fetched; the message says why, in one line."""


def describe(error, timeout):
    """One line saying why a request failed, for the log and the run's summary."""
    if isinstance(error, ProductError):
        return str(error)
    if isinstance(error, requests.Timeout) or _is_read_timeout(error):
        return f'no answer within {timeout:g} s (TOM_HTTP_TIMEOUT){_at(error)}'
    if isinstance(error, requests.HTTPError) and error.response is not None:
        status = error.response.status_code
        if status in (401, 403):
            return f'credentials rejected (HTTP {status}); check the API key{_at(error)}'
        return f'HTTP {status} {error.response.reason}{_at(error)}'
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return f'connection broken during the transfer{_at(error)}'
    if isinstance(error, requests.ConnectionError):
        return f'cannot connect{_at(error)}'
    if isinstance(error, json.JSONDecodeError):
        return 'answer is not valid JSON'
    if isinstance(error, OSError):
        return f'cannot write the file: {error.strerror or error}'
    return one_line(f'{type(error).__name__}: {error}')


def _is_read_timeout(error):
    # With retries configured, and in the middle of a streamed body, a read timeout reaches
    # us as a ConnectionError wrapping urllib3's ReadTimeoutError, not as requests.Timeout.
    if not isinstance(error, requests.ConnectionError):
        return False
    reasons = [getattr(arg, 'reason', None) if isinstance(arg, MaxRetryError) else arg for arg in error.args]
    return any(isinstance(reason, ReadTimeoutError) for reason in reasons)


def _at(error):
    request = getattr(error, 'request', None)
    url = getattr(request, 'url', None)
    return f': GET {url}' if url else ''
