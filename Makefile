# `make train` and `make test` set up a virtual environment in $(VENV) on first use.
VENV ?= .venv
PYTHON := $(VENV)/bin/python
ARGS ?=

.PHONY: install train test test-all clean clean-outputs

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PYTHON) -m pip install -e '.[test]'
	touch $@

install: $(VENV)/.installed

# The default experiment (MLP on the bundled digits, CPU, about 10 s): `make train ARGS="model=mnist_cnn"`.
train: install
	$(PYTHON) train.py $(ARGS)

# The test suite CI runs; tests marked slow are left out.
test: install
	$(PYTHON) -m pytest $(ARGS)

test-all: install
	$(PYTHON) -m pytest -m "" $(ARGS)

# Build leftovers only: the runs in outputs/ and multirun/ hold checkpoints, which only clean-outputs removes.
clean:
	rm -rf build *.egg-info

clean-outputs:
	rm -rf outputs multirun
