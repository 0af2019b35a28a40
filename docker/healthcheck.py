"""The image's HEALTHCHECK: the web server answers /health/, which checks the database."""
import os
import sys
import urllib.request

url = f'http://127.0.0.1:{os.environ.get("PORT", "8000")}/health/'
try:
    with urllib.request.urlopen(url, timeout=4) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as error:
    print(f'unhealthy: {url}: {error}', file=sys.stderr)
    sys.exit(1)
