"""Tasks of the tests' own, queued as a TOM queues its `@task`s: one that says what it got,
one that raises, one that sleeps (to hold a worker), and one that returns False."""
import time

from django_tasks import task


@task
def echo(text):
    print(f'echo says {text}')
    return text


@task
def fail(reason):
    raise RuntimeError(reason)


@task
def sleep(seconds):
    print(f'sleeping {seconds} s', flush=True)
    time.sleep(seconds)
    return seconds


@task
def refuse():
    print('ERROR the service refused the query', flush=True)
    return False
