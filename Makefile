# opsbot: `make demo` runs the whole flow on embedded defaults; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: test demo sandbox chromium lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

test: $(STAMP) chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -n auto

demo: $(STAMP)
	$(PY) -m devstack.demo

# A local Slack workspace in the browser, on the same embedded defaults as the demo (http://127.0.0.1:8765).
sandbox: $(STAMP)
	$(PY) -m devstack.sandbox

# The browser test drives Debian's chromium through Playwright (Playwright's own browser download cannot run
# here): installed with apt-get when missing and we are root; otherwise that test is skipped, saying why.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser test"; \
	    log=$$(mktemp); \
	    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	        chromium fonts-noto-color-emoji; } >"$$log" 2>&1 \
	      || { tail -n 20 "$$log"; echo "apt-get could not install chromium: the browser test will be skipped"; }; \
	    rm -f "$$log"; \
	  else echo "chromium is missing: install Debian's chromium package as root, or the browser test is skipped"; fi; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

bench: $(STAMP)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench]'
	$(PY) bench/step_cost.py
	$(PY) bench/end_to_end.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
