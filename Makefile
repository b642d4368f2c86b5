# The two commands: `make run` serves Sapa on http://127.0.0.1:8000; `make test` runs the whole suite.
# `make run PORT=8010 HOST=0.0.0.0` listens elsewhere (default: server.host and server.port of the config).
# Only the command line counts: shells such as zsh export HOST as the machine's name.
SERVE_ARGS = $(if $(filter command line,$(origin HOST)),--host $(HOST)) \
             $(if $(filter command line,$(origin PORT)),--port $(PORT))
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test soak lint install clean bench

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Sapa needs Python 3.11 or newer"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/sapa db upgrade
	$(BIN)/sapa serve $(SERVE_ARGS)

lint: $(VENV)/.installed-test
	$(BIN)/ruff check bot channels nlu handlers store scheduler tests bench
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# Long runs, full volume: 10,000 fuzzed and 5,000 forged requests, crashes and restarts under 1,000 messages,
# the 100,000-customer broadcast. `make test` runs small seeded samples of the same tests.
SOAK_TESTS = tests/adversarial tests/crash tests/handlers/test_broadcast_end_to_end.py
soak: $(VENV)/.installed-test
	SAPA_FUZZ_EXAMPLES=$${SAPA_FUZZ_EXAMPLES:-5000} SAPA_FORGERY_REQUESTS=$${SAPA_FORGERY_REQUESTS:-2500} \
	SAPA_CRASH_MESSAGES=$${SAPA_CRASH_MESSAGES:-1000} SAPA_E2E_BROADCAST_CUSTOMERS=$${SAPA_E2E_BROADCAST_CUSTOMERS:-100000} \
	SAPA_FAULT_MESSAGES=$${SAPA_FAULT_MESSAGES:-1000} \
	$(BIN)/pytest -p no:cacheprovider -s $(SOAK_TESTS)

# Issue 18's figures in one table against its goals (about 10-15 minutes; needs wrk: apt-get install -y wrk).
# `make bench BENCH_ARGS=--quick` is a smoke run; --skip-postgres leaves out the PostgreSQL runs.
bench: $(VENV)/.installed-test
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
