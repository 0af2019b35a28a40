"""gunicorn settings for the web container; each can be changed from the environment."""
import os

# Every interface in a container (compose publishes the port on 127.0.0.1 only); `make serve`
# sets 127.0.0.1:8000.
bind = os.environ.get('WEB_BIND', '0.0.0.0:8000')
workers = int(os.environ.get('WEB_CONCURRENCY', '2'))
threads = int(os.environ.get('WEB_THREADS', '2'))
# A request may take this long (a large data product download is streamed within it).
timeout = int(os.environ.get('WEB_TIMEOUT', '120'))
# On SIGTERM, requests under way get this long to finish; compose's stop_grace_period is longer.
graceful_timeout = int(os.environ.get('WEB_GRACEFUL_TIMEOUT', '20'))
accesslog = '-'
errorlog = '-'
# Heartbeat files in memory: a container's overlay filesystem can stall a worker's heartbeat.
worker_tmp_dir = '/dev/shm' if os.path.isdir('/dev/shm') else None
