# The whole set-up is `make demo` and `make test`: each creates .venv on first
# use and re-installs only when pyproject.toml changes.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test bench slow clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,plot,bench,flax]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m jaxgd demo --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -q -n 2

slow: $(STAMP)
	$(PY) -m pytest -q -m slow

# OPENBLAS_NUM_THREADS=1: an idle OpenBLAS pool from NumPy/scipy work in the
# same process can take the second core from XLA (see benchmarks/RESULTS.md).
bench: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m jaxgd bench

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
