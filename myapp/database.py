"""Database helpers: long-running processes and the server going away (a restart, a
failover), and counters that several processes add to at once."""
from django.db import connection
from django.db.models import F


def reconnect_if_lost():
    """Closes the connection if the server has dropped it, so that the next query opens a
    new one instead of failing: a long job calls this before each round of queries, as
    Django checks its connections at each request."""
    if connection.connection is not None and not connection.in_atomic_block and not connection.is_usable():
        connection.close()


def add_one(model, **key):
    """Adds one to the `total` of model's row for key, creating it at 1 (a unique constraint
    on key makes a second creator fall back to the update)."""
    if model.objects.filter(**key).update(total=F('total') + 1):
        return
    _, created = model.objects.get_or_create(**key, defaults={'total': 1})
    if not created:
        model.objects.filter(**key).update(total=F('total') + 1)
