"""The cron program's ear on PostgreSQL: a connection of its own LISTENing to myapp/wake.py's
channel, whose socket the program's loop waits on beside its children's pipes; what it
hears says which part to tick now (Run now, tasks). Lost with the database, it is opened
again at the next fallback poll; meanwhile the parts poll as they do on SQLite."""
import psycopg
from django.db import connection

from myapp import wake


class Listener:
    def __init__(self, say):
        self.say = say
        self.connection = None

    @property
    def enabled(self):
        return wake.can_listen()

    def open(self):
        """Listens, if not already; False when the database cannot be reached."""
        if self.connection is not None or not self.enabled:
            return self.connection is not None
        try:
            params = connection.get_connection_params()
            params.pop('cursor_factory', None)
            self.connection = psycopg.connect(**params, autocommit=True)
            self.connection.execute(f'LISTEN {wake.CHANNEL}')
        except psycopg.Error:
            self.close()
            return False
        return True

    def fileno(self):
        return self.connection.fileno() if self.connection is not None else None

    def heard(self):
        """What was said since the last call ({'run-now', 'task'}); the connection is dropped
        (and heard as everything) on an error, so nothing said meanwhile is missed."""
        if self.connection is None:
            return set()
        try:
            return {notice.payload for notice in self.connection.notifies(timeout=0)}
        except psycopg.Error:
            self.close()
            return {wake.RUN_NOW, wake.TASK}

    def close(self):
        if self.connection is not None:
            try:
                self.connection.close()
            except psycopg.Error:
                pass
        self.connection = None
