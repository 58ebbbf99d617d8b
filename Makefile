# The whole set-up is `make demo` and `make test`: each creates .venv on first
# use and re-installs only when pyproject.toml changes.
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
OUT    ?= out

.PHONY: demo test bench slow docs clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,plot,bench,flax]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m jaxgd demo --out $(OUT)

# --dist loadfile: each test file runs in one worker, so module fixtures are
# built once. `make test` skips the tests marked slow; `make slow` runs only
# those; CI (.ci/run) runs both. The suite compiles with XLA:CPU's classic
# emitters (tests/conftest.py), except $(BLOCKS): it checks that a loop's bits
# do not depend on how its body is cut into kernels, which holds under JAX's
# default emitters, the ones an unrolled loop gets (jaxgd/core/compile.py).
BLOCKS := tests/test_blocks.py
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile --ignore=$(BLOCKS)
	JAXGD_TEST_XLA_DEFAULTS=1 $(PY) -m pytest -q -n 2 $(BLOCKS)

slow: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m slow --ignore=$(BLOCKS)
	JAXGD_TEST_XLA_DEFAULTS=1 $(PY) -m pytest -q -n 2 -m slow $(BLOCKS)

# OPENBLAS_NUM_THREADS=1: an idle OpenBLAS pool from NumPy/scipy work in the
# same process can take the second core from XLA (see benchmarks/RESULTS.md).
bench: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m benchmarks

# The API reference (mkdocs.yml, docs/): warnings are errors. Open build/site/index.html.
DOCS_STAMP := $(VENV)/.docs-installed
$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install -q -e '.[docs]'
	touch $(DOCS_STAMP)

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

clean:
	rm -rf $(VENV) $(OUT) build *.egg-info
