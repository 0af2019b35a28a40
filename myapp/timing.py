"""Durations (`90s`, `50m`, `2h`, or seconds) and times, read and written as people do."""
import re
from datetime import UTC

UNITS = {'': 1, 's': 1, 'm': 60, 'h': 3600}
PATTERN = re.compile(r'^\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*$')


def parse_duration(text):
    """Seconds in text, as a float; ValueError with a one-line reason otherwise."""
    match = PATTERN.match(str(text))
    if not match or float(match.group(1)) <= 0:
        raise ValueError(f'{text!r} is not a duration: write seconds, or a number with s, m or h (90s, 50m, 2h)')
    return float(match.group(1)) * UNITS[match.group(2)]


def format_duration(seconds):
    """The shortest of `45s`, `50m`, `2h`, `1h30m` that says seconds exactly (to the second)."""
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f'{n}{unit}' for n, unit in ((hours, 'h'), (minutes, 'm'), (seconds, 's')) if n]
    return ''.join(parts) or '0s'


def format_moment(moment):
    """A time for a log line: UTC, to the second."""
    return f'{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC'


def format_local(moment):
    """A time in the TOM's time zone, to the second."""
    from django.utils import timezone  # not at the top: the settings import this module

    return f'{timezone.localtime(moment):%Y-%m-%d %H:%M:%S %Z}'
