"""Turning an error into one line a person can act on: one log line per event."""


def one_line(text):
    """text with its line breaks and runs of spaces folded."""
    return ' '.join(str(text).split())
