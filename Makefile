# Two entry points, both of which set up what they need first:
#   make run    prepares the default data and model and runs `autotune --mode online`
#   make test   lints (ruff, configured in pyproject.toml), then runs the test suite
# The virtual environment is rebuilt only when pyproject.toml changes.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	# The serving protos only: its declared requirement is stock TensorFlow, which
	# would shadow intel-tensorflow.
	$(BIN)/pip install --quiet --no-deps 'tensorflow-serving-api==2.14.1'
	touch $(STAMP)

run: setup
	$(BIN)/autotune --mode online

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)
