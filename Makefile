# hpc_vdm: `make demo` (set up + run the pipeline on the embedded mock), `make test` (set up + all tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEMO   ?= out/demo
export OMP_NUM_THREADS ?= 1
export DS_ACCELERATOR ?= cpu
export DS_BUILD_OPS := 0

.PHONY: venv demo test test-fast bench slurm-up slurm-down clean

venv: $(VENV)/.installed

# torch first and pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[test,mpi]"
	touch $@

# The main job on the embedded default: mock CAMELS maps -> maps.zarr -> DeepSpeed training -> export,
# then held-out posterior samples and one TNG100-sized mock slab by fused tiling.
# Each stage runs once; rerunning `make demo` resumes (or finishes) the training run.
DEMO_CMD   := $(DEMO)/cmd/params_LH_IllustrisTNG.txt
DEMO_STORE := $(DEMO)/maps.zarr/zarr.json

$(DEMO_CMD): | venv
	$(PY) -m hpc_vdm.mock --config configs/demo.yaml --set mock.out_dir=$(DEMO)/cmd --preview $(DEMO)/mock_preview.png --overwrite

$(DEMO_STORE): $(DEMO_CMD)
	$(PY) -m hpc_vdm.prepare --config configs/demo.yaml --set data.source_dir=$(DEMO)/cmd --set data.store=$(DEMO)/maps.zarr --overwrite

DEMO_SAMPLES := $(DEMO)/samples/summary.json

demo: $(DEMO_STORE)
	$(PY) -m hpc_vdm.train configs/demo.yaml --set data.store=$(DEMO)/maps.zarr --run-dir $(DEMO)/run
	$(MAKE) $(DEMO_SAMPLES)
	$(PY) -m hpc_vdm.tile --config configs/demo.yaml --set tile.model=$(DEMO)/run/export/model.pt --out $(DEMO)/tng100.zarr

$(DEMO_SAMPLES):
	$(PY) -m hpc_vdm.sample --config configs/demo.yaml --model $(DEMO)/run/export/model.pt --out $(DEMO)/samples

test: venv
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not slow"

bench: venv
	$(PY) tools/bench_loader.py
	$(PY) tools/bench_train.py
	$(PY) tools/bench_tile.py

# A single-node SLURM on localhost (root or sudo; Debian packages): then `export` the line it prints.
slurm-up:
	bash tools/slurm_up.sh

slurm-down:
	bash tools/slurm_down.sh

clean:
	rm -rf $(VENV) out .pytest_cache
