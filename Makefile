# hpc_vdm: `make demo` (set up + run the pipeline on the embedded mock), `make test` (set up + all tests).
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
DEMO   ?= out/demo
export OMP_NUM_THREADS ?= 1
# threads of the single-process stages (tile, spectra, evaluate, the science tools); the 2-process training runs
# and the mock's simulation workers keep one thread each
export THREADS ?= $(shell nproc 2>/dev/null || echo 2)
ONE     := OMP_NUM_THREADS=$(THREADS)
export DS_ACCELERATOR ?= cpu
export DS_BUILD_OPS := 0

.PHONY: venv demo science dm2galaxy emulator test test-fast bench slurm-up slurm-down clean

venv: $(VENV)/.installed

# torch first and pinned: a plain `torch` requirement would pull a multi-GB CUDA build.
$(VENV)/.installed: setup.py constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e ".[test,mpi]"
	touch $@

# The main job on the embedded default, every stage's output under $(DEMO); each stage runs once, so a
# rerun reuses what is done (and resumes the training run):
#   mock LH (train), CV and 1P (test) -> maps.zarr, maps_cv.zarr, maps_1p.zarr (pooled to 64^2) -> a small
#   tile-safe VDM trained with DeepSpeed on 2 processes (torchrun) -> one TNG100-sized mock slab by tiling
#   -> its spectra -> evaluate: metrics.json and report/ (Fig. 1, Fig. 2, calibration, baselines, 1P, tiled
#   panels, summary.md).
NPROC      ?= 2
TORCHRUN   := $(PY) -m torch.distributed.run --standalone --nproc_per_node=$(NPROC)
MOCK        = $(PY) -m hpc_vdm.mock --config configs/demo.yaml --set mock.out_dir=$(DEMO)/cmd
PREPARE     = $(PY) -m hpc_vdm.prepare --config configs/demo.yaml --set data.source_dir=$(DEMO)/cmd
DEMO_MODEL := $(DEMO)/run/export/model.pt

$(DEMO)/cmd/params_LH_IllustrisTNG.txt: | venv
	$(MOCK) --preview $(DEMO)/mock_preview.png
$(DEMO)/cmd/params_CV_IllustrisTNG.txt: | venv
	$(MOCK) --sim-set CV --n-sims 3
$(DEMO)/cmd/params_1P_IllustrisTNG.txt: | venv $(DEMO)/maps_cv.zarr/zarr.json  # one mock writes $(DEMO)/cmd at a time
	$(MOCK) --sim-set 1P --set mock.n_1p_values=3 --set 'mock.one_p_params=[Omega_m,A_SN1]'

$(DEMO)/maps.zarr/zarr.json: $(DEMO)/cmd/params_LH_IllustrisTNG.txt
	$(PREPARE) --out $(DEMO)/maps.zarr
$(DEMO)/maps_cv.zarr/zarr.json: $(DEMO)/cmd/params_CV_IllustrisTNG.txt
	$(PREPARE) --sim-set CV --out $(DEMO)/maps_cv.zarr --set 'data.split_fractions=[1.0,0.0,0.0]'
$(DEMO)/maps_1p.zarr/zarr.json: $(DEMO)/cmd/params_1P_IllustrisTNG.txt
	$(PREPARE) --sim-set 1P --out $(DEMO)/maps_1p.zarr --set 'data.split_fractions=[1.0,0.0,0.0]'

$(DEMO_MODEL): $(DEMO)/maps.zarr/zarr.json
	OMP_NUM_THREADS=1 $(TORCHRUN) -m hpc_vdm.train configs/demo.yaml --set data.store=$(DEMO)/maps.zarr \
	    --run-dir $(DEMO)/run

$(DEMO)/tng100.png: $(DEMO_MODEL)
	$(ONE) $(PY) -m hpc_vdm.tile --config configs/demo.yaml --model $(DEMO_MODEL) --out $(DEMO)/tng100.zarr

$(DEMO)/tng100_spectra.json: $(DEMO)/tng100.png
	$(ONE) $(PY) -m hpc_vdm.spectra auto $(DEMO)/tng100.zarr --array mean --overdensity --out $@ --figure $(DEMO)/tng100_spectra.png

$(DEMO)/eval/metrics.json: $(DEMO_MODEL) $(DEMO)/maps_cv.zarr/zarr.json $(DEMO)/maps_1p.zarr/zarr.json $(DEMO)/tng100_spectra.json
	$(ONE) $(PY) -m hpc_vdm.evaluate --config configs/demo.yaml --model $(DEMO_MODEL) --store $(DEMO)/maps.zarr \
	    --set evaluate.cv_store=$(DEMO)/maps_cv.zarr --set evaluate.one_p_store=$(DEMO)/maps_1p.zarr \
	    --set evaluate.tile_store=$(DEMO)/tng100.zarr --out $(DEMO)/eval

# After training, two lanes side by side (-j2: the CV then 1P sets beside the tiled slab and its spectra; the
# same files as one after the other, 55 s sooner on 2 cores), then the report.
demo: | venv
	@$(MAKE) --no-print-directory $(DEMO_MODEL)
	@$(MAKE) --no-print-directory -j2 $(DEMO)/tng100_spectra.json $(DEMO)/maps_1p.zarr/zarr.json
	@$(MAKE) --no-print-directory $(DEMO)/eval/metrics.json
	@echo "demo done: $(DEMO)/eval/report/summary.md (figures beside it), $(DEMO)/tng100.png"

# Proof of learning on CPU (not in CI, but its smoke-size run is: tools/science_smoke.sh; 2 h 28 min on 2 cores
# as one command, docs/results/science/one_go): configs/science.yaml end to end — the mock,
# the tile-safe VDM and the deterministic U-Net baseline trained with the same budget, evaluate against the
# condition, a linear transfer function and that baseline, the sampler-cost table and the tiling check — then
# the report is copied to docs/results/science/ (metrics.json, summary.md, figures, sampler_cost.json).
SCI ?= out/science
SCIENCE_DOCS ?= docs/results/science
TILING_DOCS ?= docs/results/tiling
# every stage's paths under $(SCI); SCIENCE_SET adds --set overrides to every stage and SCIENCE_COST / SCIENCE_SEAMS
# arguments to the two tools (a smoke-size check of the chain: tools/science_smoke.sh)
SCI_PATHS = --set mock.out_dir=$(SCI)/cmd --set data.source_dir=$(SCI)/cmd --set data.store=$(SCI)/maps.zarr
SCIENCE_SET ?=
SCIENCE_COST ?=
SCIENCE_SEAMS ?= --box 75 --tiles 64,96 --halo 48 --samples 2
science: | venv
	@test -f $(SCI)/cmd/params_LH_IllustrisTNG.txt || $(PY) -m hpc_vdm.mock --config configs/science.yaml $(SCI_PATHS) $(SCIENCE_SET)
	@test -f $(SCI)/maps.zarr/zarr.json || $(PY) -m hpc_vdm.prepare --config configs/science.yaml $(SCI_PATHS) $(SCIENCE_SET)
	OMP_NUM_THREADS=1 $(TORCHRUN) -m hpc_vdm.train configs/science.yaml $(SCI_PATHS) --run-dir $(SCI)/run $(SCIENCE_SET)
	OMP_NUM_THREADS=1 $(TORCHRUN) -m hpc_vdm.train configs/science_regressor.yaml $(SCI_PATHS) --run-dir $(SCI)/regressor \
	    $(SCIENCE_SET)
	@test -f $(SCI)/eval/metrics.json || $(ONE) $(PY) -m hpc_vdm.evaluate --config configs/science.yaml $(SCI_PATHS) \
	    --model $(SCI)/run/export/model.pt --set 'evaluate.baselines={regressor: $(SCI)/regressor/export/model.pt}' \
	    --out $(SCI)/eval $(SCIENCE_SET)
	@test -f $(SCI)/sampler_cost.json || $(ONE) $(PY) tools/sampler_cost.py --model $(SCI)/run/export/model.pt \
	    --out $(SCI)/sampler_cost.json $(SCIENCE_COST)
	@test -f $(SCI)/seams/seams_mock75.json || $(ONE) $(PY) tools/seams.py --model $(SCI)/run/export/model.pt \
	    --out $(SCI)/seams $(SCIENCE_SEAMS)
	mkdir -p $(SCIENCE_DOCS) $(TILING_DOCS) && cp $(SCI)/eval/metrics.json $(SCI)/eval/report/summary.md \
	    $(SCI)/eval/report/*.png configs/science*.yaml $(SCI)/sampler_cost.json $(SCIENCE_DOCS)/
	cp $(SCI)/run/metrics.csv $(SCIENCE_DOCS)/train_metrics.csv
	cp $(SCI)/regressor/metrics.csv $(SCIENCE_DOCS)/regressor_metrics.csv
	cp $(SCI)/seams/seams_mock75.json $(TILING_DOCS)/seams_mock75_science_net.json
	cp $(SCI)/seams/seams_mock75.png $(TILING_DOCS)/seams_mock75_science_net.png

# DM -> galaxies (Sether+24, #26) on CPU: the reverse VDM, the two-phase CNN and the HOD compared by evaluate;
# the report lands in docs/results/dm2galaxy/ (configs/dm2galaxy.yaml; stages are skipped once done; 1 h 26 min on
# 2 cores from nothing, 2026-12-06).
dm2galaxy: | venv
	HPC_VDM_PYTHON=$(PY) NPROC=$(NPROC) bash docs/results/dm2galaxy/run.sh

# Mudur+23 on CPU (not in CI; 1 h 43 min on 2 shared cores, docs/results/emulator): the emulator conditioned on
# (Omega_m, sigma_8) trained on the mock's LH maps pooled to 64^2, `evaluate`'s emulation checks against the LH, CV and
# 1P sets, `infer` (the bound on parameter grids: calibration over test maps beside the P(k) baseline, and the paper's
# Fig. 3 with NUTS), then the results are copied to docs/results/emulator/.
emulator: | venv
	PY=$(PY) bash docs/results/emulator/run.sh

# The fast tests (single-process, in-process) run on 2 pytest-xdist workers, one test file each at a time; the slow
# ones start 2-process jobs of their own (torchrun, mpiexec, SLURM, sweeps) and some time signals, so they run one by one.
XDIST ?= -n 2 --dist loadfile
test: venv
	$(PY) -m pytest -q -m "not slow" $(XDIST) --durations=10
	$(PY) -m pytest -q -m slow --durations=15

test-fast: venv
	$(PY) -m pytest -q -m "not slow" $(XDIST)

bench: venv
	$(PY) tools/bench_loader.py
	$(PY) tools/bench_train.py
	$(PY) tools/bench_tile.py
	$(PY) tools/bench_export.py
	$(PY) tools/bench_prior.py

# A single-node SLURM on localhost (root or sudo; Debian packages): then `export` the line it prints.
slurm-up:
	bash tools/slurm_up.sh

slurm-down:
	bash tools/slurm_down.sh

clean:
	rm -rf $(VENV) out .pytest_cache
