# Two entry points for a new user: `make demo` and `make test`.
# Both create .venv with the Python found on PATH (3.11+) and install tailor into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test clean

# The locked versions (requirements.lock, exported from uv.lock), then tailor itself.
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "tailor needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $(STAMP)

# The whole loop offline on the bundled problems: tiny model, rules judge, reference teacher.
demo: $(STAMP)
	$(BIN)/tailor demo demo-project

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) demo-project demo-tiny
