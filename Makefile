# Two commands matter: `make test` (a fresh machine to a passing suite) and `make run`.
# Everything runs from .venv, which `make venv` creates from uv.lock with nothing but python3.
PYTHON ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
UV_VERSION := 0.13.9

.PHONY: venv test run

venv: $(VENV)/.synced

# uv itself is pinned in the lock's dev group, so `uv sync` keeps it in the venv it manages.
# Bytecode is compiled up front: each job is a new process, and some machines forbid writing it.
# The stamp file makes the (slow) sync run again only when the lock changes.
$(VENV)/.synced: uv.lock pyproject.toml
	@test -x $(UV) || { $(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install --quiet uv==$(UV_VERSION); }
	$(UV) sync --locked --compile-bytecode --python $(VENV)/bin/python
	@touch $@

# The whole suite on SQLite, then the database-facing part again on a real PostgreSQL.
test: venv
	$(VENV)/bin/pytest -n auto $(PYTEST_ARGS)
	tests/with_postgres.sh $(VENV)/bin/pytest -n auto tests/test_save_data.py $(PYTEST_ARGS)

# The TOM on this machine with the embedded SQLite database under ./data, for trying it out.
run: venv
	DEBUG=$${DEBUG:-1} $(VENV)/bin/python manage.py migrate --no-input
	DEBUG=$${DEBUG:-1} $(VENV)/bin/python manage.py runserver $${PORT:-8000}
