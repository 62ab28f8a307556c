# ReturnSync: `make run` brings the dashboard up, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test bench soak install migrate seed clean lint

run: install migrate seed ## set up, then start web server + worker + sandbox traffic (Ctrl-C stops all)
	$(PY) manage.py runall --host $(HOST) --port $(PORT)

test: install ## run the whole suite (SQLite, or DATABASE_URL if set)
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install migrate ## benchmarks print figures, each ratio next to the README's recorded figure; see bench/
	@set -e; found=0; for b in bench/*.py; do [ -e "$$b" ] || continue; \
	  case "$$b" in bench/common.py|bench/report.py|bench/soak.py) continue;; esac; found=1; \
	  name=$$(basename $$b .py); echo "== $$b"; $(PY) $$b 2>&1 | $(PY) bench/report.py $$name; done; \
	  [ $$found = 1 ] || echo "no benchmarks yet"

soak: install ## the fault and load proof (PostgreSQL + Redis + gunicorn + two clusters); SOAK_RETURNS sets the size
	$(PY) bench/soak.py 2>&1 | $(PY) bench/report.py soak

install: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is required")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

migrate: install
	$(PY) manage.py migrate --no-input

seed: install ## demo users, sandbox data and the background schedules (all idempotent)
	$(PY) manage.py seed_demo
	$(PY) manage.py sandbox_seed --orders 200 --seed 1 --server-url http://$(HOST):$(PORT)
	$(PY) manage.py zigzag_sandbox_seed --server-url http://$(HOST):$(PORT)
	$(PY) manage.py sandbox_faults --mix --seed 1
	$(PY) manage.py schedules_ensure

lint: install ## ruff, pinned in pyproject.toml
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
