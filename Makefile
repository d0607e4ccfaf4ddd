# Two commands do everything on a new machine: `make run` and `make test`. See README.md.
VENV := .venv
BIN := $(VENV)/bin
export DJANGO_SETTINGS_MODULE := logsvc.settings

.PHONY: install system-packages run test lint bench clean

install: $(VENV)/.installed

# Debian packages the tests and benchmarks drive: Chromium (browser tests, through Playwright), jq (the
# GoatCounter seed's export loop, run as a test) and wrk (benchmarks). Installed when missing and we may;
# while another apt-get or dpkg holds the lock, wait for it (up to 10 minutes) instead of giving up at once.
SYSTEM_PACKAGES := chromium jq wrk
system-packages:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "Installing$$missing with apt-get"; \
	    apt-get -o DPkg::Lock::Timeout=600 update -qq && DEBIAN_FRONTEND=noninteractive \
	      apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends$$missing >/dev/null; \
	  else \
	    echo "The tests need$$missing: install them (e.g. sudo apt-get install$$missing) and run make again."; exit 1; \
	  fi; \
	fi

# Django 6 needs Python >= 3.12: take the first suitable interpreter on PATH, else one pyenv has.
$(VENV)/.installed: requirements.txt
	@set -e; py=""; \
	for c in python3.13 python3.12 python3.14 python3; do \
	  p=$$(command -v $$c 2>/dev/null) || continue; \
	  if $$p -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then py=$$p; break; fi; \
	done; \
	if [ -z "$$py" ] && command -v pyenv >/dev/null 2>&1; then \
	  for v in $$(pyenv versions --bare 2>/dev/null | sort -rV); do \
	    case $$v in 3.1[2-9]*) py=$$(pyenv root)/versions/$$v/bin/python3; break;; esac; \
	  done; \
	fi; \
	if [ -z "$$py" ]; then \
	  echo "logsvc needs Python 3.12 or newer (Django 6), and none was found."; \
	  echo "Install one (e.g. 'pyenv install 3.13', or your system's python3.13 package) and run make again."; \
	  exit 1; \
	fi; \
	echo "Using $$py ($$($$py --version))"; \
	[ -x $(BIN)/python ] || $$py -m venv $(VENV); \
	$(BIN)/python -m pip install --quiet --upgrade pip; \
	$(BIN)/python -m pip install --quiet --progress-bar off -r requirements.txt; \
	touch $@

# A local run: DEBUG on unless you say otherwise; the embedded PostgreSQL unless DATABASE_URL is set.
run: export DEBUG ?= true
run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py createcachetable
	$(BIN)/python manage.py demo
	@echo "Starting the worker and the web server on http://127.0.0.1:8000 (Ctrl-C stops both)"
	@trap 'kill $$worker 2>/dev/null; wait $$worker 2>/dev/null' EXIT INT TERM; \
	$(BIN)/python manage.py db_worker & worker=$$!; \
	$(BIN)/gunicorn logsvc.asgi --worker-class uvicorn_worker.UvicornWorker --bind 127.0.0.1:8000 --workers 2 \
	  --preload --keep-alive 15 --access-logfile -

# The whole suite on PostgreSQL: DATABASE_URL's server, else the embedded one.
test: export SECRET_KEY ?= test-only-secret
test: install system-packages
	$(BIN)/pytest $(PYTEST_ARGS)

lint: export SECRET_KEY ?= lint-only
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .

bench: install system-packages
	$(BIN)/python bench/ingest.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var staticfiles
