# The README's commands. Every target sets itself up on a fresh clone.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup fonts demo test test-fast lab lint clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[test,dev]"
	touch $(STAMP)

setup: $(STAMP) fonts

# Chinese chart labels need a CJK font; install one from Debian where we can (root + apt).
fonts: $(STAMP)
	@if $(BIN)/python -c "import sys; from analysis.plots import find_cjk_font; sys.exit(not find_cjk_font())"; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing a CJK font (fonts-wqy-microhei) for Chinese chart labels"; \
	  apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1 || \
	  { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq fonts-wqy-microhei >/dev/null 2>&1; } || \
	  echo "warning: could not install a CJK font; Chinese labels will not render (see README)"; \
	else echo "warning: no CJK font found; install fonts-noto-cjk or fonts-wqy-microhei (see README)"; fi

demo: setup  ## generate the demo data set and run the main job on it
	$(BIN)/sms-ledger demo

test: setup  ## run the whole test suite: the unit tests one process per core, then the slow ones one at a time
	$(BIN)/python -m pytest -m "not slow" -n auto
	$(BIN)/python -m pytest -m slow

test-fast: setup  ## the unit tests only: no notebooks, demo, Dask or real processes; one process per core
	$(BIN)/python -m pytest -m "not slow" -n auto

lab: setup  ## open the notebooks in JupyterLab with the project's environment
	$(BIN)/python -m pip install --quiet -e ".[lab]"
	$(BIN)/jupyter lab notebooks/ $$([ "$$(id -u)" = 0 ] && echo --allow-root)

lint: setup
	$(BIN)/ruff check analysis tests

clean:
	rm -rf data/raw/demo data/interim/send_log data/interim/.send_log.lock reports/* .cache
