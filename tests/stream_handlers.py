"""Handlers for the alert-stream tests, run by real stream processes: they store as the shipped
handler does, and fail, stall or hang on the messages the tests mark."""
import os
import time
from pathlib import Path

from myapp.streams.handlers import save_alert


def store_or_fail(message):
    """Stores the message; a value starting with `bad` raises, until the file STREAM_FIX names
    exists (the cause fixed, for a retry)."""
    if message.value().startswith(b'bad') and not Path(os.environ.get('STREAM_FIX', '/nonexistent')).exists():
        raise ValueError(f'cannot read {message.value()[:20]!r}')
    save_alert(message)


def store_slowly_once(message):
    """Stores the message; on a value `slow`, the first time, writes this process's pid to the
    file STREAM_HANDLING names and waits (to be killed mid-handling)."""
    marker = Path(os.environ['STREAM_HANDLING'])
    if message.value() == b'slow' and not marker.exists():
        marker.write_text(str(os.getpid()))
        time.sleep(120)
    save_alert(message)


def hang(message):
    """Never returns by itself (the handler timeout makes the message a dead letter)."""
    time.sleep(3600)
