# The quick start: `make demo` and `make test` work on a fresh machine with
# Python 3.11 and make; both create .venv and install what they need.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test test-versions lint typecheck docs compat compat-libs bench bench-alternatives ci clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,docs,uvloop,example]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/demo.py

# The example as a cluster: one nats-server, 2 API processes on one port, 2
# conductors; a rolling restart under load, then the exactly-once check.
# `make demo-cluster ARGS=--keep` leaves it running; ARGS=--store=postgresql://...
.PHONY: demo-cluster
demo-cluster: $(STAMP)
	$(PY) examples/cluster.py $(ARGS)

test: $(STAMP)
	$(PY) -m pytest

# The suite on the other supported CPythons found on the machine (pyenv
# installs); each gets its own venv. A version not installed is skipped; a
# failing version does not stop the others (the target fails at the end).
# The long randomized tests run smaller there (the main run, `make test`,
# runs them in full): 40 differential programs instead of 120, 600 churn
# operations per configuration instead of 1500, the example service's
# tests on SQLite only and without the cluster.
PYENV_ROOT ?= $(HOME)/.pyenv
test-versions:
	@failed=""; for v in 3.10 3.12 3.13; do \
	  py=$$(ls -d $(PYENV_ROOT)/versions/$$v.*/bin/python 2>/dev/null | tail -n 1); \
	  if [ -z "$$py" ]; then echo "CPython $$v: not installed here, skipped"; continue; fi; \
	  echo "=== CPython $$v ($$py)"; \
	  $$py -m venv .venv-$$v && .venv-$$v/bin/python -m pip install -q -e '.[test,uvloop,example]' \
	    && BRIDGE_DIFF_SEEDS=0-39 BRIDGE_CHURN_OPS=600 EXAMPLE_TESTS=quick \
	       .venv-$$v/bin/python -m pytest -q -p no:cacheprovider || failed="$$failed $$v"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-versions failed on CPython$$failed"; exit 1; fi

lint: $(STAMP)
	$(PY) -m ruff check bridge tests examples bench compat docs stress
	$(PY) -m ruff format --check bridge tests examples bench compat docs stress

typecheck: $(STAMP)
	$(PY) -m mypy

docs: $(STAMP)
	$(PY) -m sphinx -W --keep-going -b html docs docs/_build/html

# eventlet's own test suite on bridge.hub (HUBS="bridge.hub epolls asyncio" for the side-by-side table)
HUBS ?= bridge.hub
compat: $(STAMP)
	$(PY) compat/eventlet_suite.py $(HUBS)

# OpenStack libraries' own unit tests on bridge.hub, against compat/baselines/ (docs/compatibility.md).
# LIBS="oslo.log futurist" chooses libraries (default all; "ci" is what .ci/run runs);
# HUBS="bridge.hub epolls" for the side-by-side table.
LIBS ?= all
compat-libs: $(STAMP)
	$(PY) compat/libs_suite.py --libs "$(LIBS)" $(HUBS)

bench: $(STAMP)
	$(PY) bench/hub.py

# The migration paths against threads (cheroot, futurist), side by side: docs/performance.md.
# ARGS="--quick" for a short run; ARGS="--markdown --json out.json --plots docs/images" for the docs.
ARGS ?=
bench-alternatives: $(STAMP)
	$(PY) -m pip install -q -e '.[bench]'
	$(PY) bench/alternatives.py $(ARGS)

clean:
	rm -rf $(VENV) .venv-3.* docs/_build compat/_work .pytest_cache .ruff_cache .mypy_cache
