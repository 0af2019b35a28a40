"""Long-running processes and the database server going away (a restart, a failover)."""
from django.db import connection


def reconnect_if_lost():
    """Closes the connection if the server has dropped it, so that the next query opens a
    new one instead of failing: a long job calls this before each round of queries, as
    Django checks its connections at each request."""
    if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
        connection.close()
