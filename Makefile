# The README's two commands: `make demo` (relock's main job on the project's
# own image) and `make test` (the whole suite). Both set up what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: test demo testbed venv lint bench

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

testbed:
	scripts/testbed

test: testbed venv
	$(BIN)/ruff check relock tests
	$(BIN)/mypy
	CI=$${CI:-} $(BIN)/pytest

# The demo needs only the engine and the base images, not the tests' tools.
demo: venv
	scripts/testbed --demo
	PATH=$(CURDIR)/$(BIN):$$PATH scripts/demo

lint: venv
	$(BIN)/ruff check relock tests
	$(BIN)/mypy

bench: testbed venv
	PATH=$(CURDIR)/$(BIN):$$PATH $(BIN)/python benchmarks/run.py
