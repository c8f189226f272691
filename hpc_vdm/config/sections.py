"""The config sections: one dataclass per concern, every field with its doc, range or choices.

:class:`RunConfig` is everything one run of any command reads. Its defaults are the embedded default
(the mock CAMELS pipeline); a YAML file in ``configs/`` changes some and ``--set section.key=value`` one
more (:mod:`hpc_vdm.config.schema` does the loading and checking).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .emulate import EmulatorOptions, InferConfig
from .families import Dm2galOptions, TwoPhaseOptions, VDMOptions
from .schema import ConfigError, param

SUITES = ("IllustrisTNG", "SIMBA", "Astrid")
SETS = ("LH", "1P", "CV")
MODEL_KINDS = ("vdm", "regressor", "dm2gal", "two_phase", "emulator")
PARAM_NAMES = ("Omega_m", "sigma_8", "A_SN1", "A_AGN1", "A_SN2", "A_AGN2")  # = data.camels.PARAM_NAMES
DEVICES = ("auto", "cpu", "cuda")
SAMPLER_KINDS = ("ancestral", "dpm2m", "dpm3m", "dpm2m_sde", "dpm3m_sde", "unipc")  # = diffusion.SAMPLERS


@dataclass
class MockConfig:
    """The particle-mesh mock of CAMELS CMD maps (``python -m hpc_vdm.mock``)."""

    out_dir: str = param("data/cmd", "folder that receives the CMD-layout .npy and params files")
    suite: str = param("IllustrisTNG", "galaxy-formation suite whose stellar-halo relation is used", choices=SUITES)
    set: str = param("LH", "CAMELS set: LH (Latin hypercube), 1P (one parameter at a time), CV (fiducial)",
                     choices=SETS)
    n_sims: int = param(4, "number of simulations (LH, CV); 1P uses n_1p_values per parameter",
                        range=(1, 100_000))
    n_1p_values: int = param(5, "1P: values per parameter, spanning its LH range", range=(2, 101))
    one_p_params: list[str] = param([], "1P: the parameters varied one at a time ([] = all six; e.g. [Omega_m, A_SN1])")
    particles: int = param(64, "particles per side of the PM run (64 tests, 128 demos, 256 faithful)",
                           range=(8, 4096))
    pm_steps: int = param(5, "kick-drift-kick PM steps from a_start to a=1", range=(1, 1000))
    a_start: float = param(0.1, "scale factor of the 2LPT initial conditions", range=(0.01, 0.5))
    upsample: int = param(1, "sub-particles per particle per side, interpolated from the displacement field",
                          range=(1, 4))
    map_pixels: int = param(256, "pixels per side of every map", range=(8, 16384))
    box_mpc_h: float = param(25.0, "box side [Mpc/h]", range=(1e-3, None))
    n_slabs: int = param(5, "slabs per axis (CAMELS: 5 slabs of 5 Mpc/h)", range=(1, 1024))
    n_ngb: float = param(8.0, "SPH neighbours (of the painted sub-particles) that set the DM kernel; CMD's 64 "
                              "neighbours of 256^3 particles are 64 (particles * upsample / 256)^3: 8 at 128^3, "
                              "64 at 256^3", range=(1.0, 1024.0))
    seed: int = param(0, "master seed: every simulation's initial conditions derive from it", range=(0, 2**31 - 1))
    nbody: bool = param(False, "also write the N-body twin maps Maps_Mtot_Nbody_{suite}_{set} (same ICs, one more "
                               "DM painting per simulation)")
    catalogues: bool = param(True, "write the halo/galaxy catalogue of every simulation (HDF5, Subfind-like)")
    grids: list[int] = param([], "also write 3D grids Grids_{field}_{suite}_{set}_{N}_z=0.00.npy at these N "
                                 "(e.g. [64, 128]; fields Mcdm, Mstar, Msubhalo, and Mtot with nbody)")
    workers: int = param(1, "simulations run side by side in this many processes (results do not depend on it)",
                         range=(1, 1024))
    kernels: str = param("numba", "numba (compiled) or numpy (the reference) CIC/PM kernels",
                         choices=("numba", "numpy"))


@dataclass
class DataConfig:
    """CMD files -> ``maps.zarr`` (``python -m hpc_vdm.prepare``) and the training dataset."""

    source_dir: str = param("data/cmd", "folder with Maps_{field}_{suite}_{set}_z=0.00.npy and params_{set}_{suite}.txt")
    suite: str = param("IllustrisTNG", "suite of the CMD files", choices=SUITES)
    set: str = param("LH", "set of the CMD files", choices=SETS)
    store: str = param("data/maps.zarr", "the Zarr maps store")
    fields: list[str] = param(["Mstar", "Mcdm"], "CMD fields copied into the store ('Mtot_Nbody': the suite's N-body twin maps, Maps_Mtot_Nbody_{suite}_{set})")
    condition: str = param("Mstar", "field the model is conditioned on")
    target: str = param("Mcdm", "field the model generates")
    box_mpc_h: float = param(25.0, "side of every map [Mpc/h]", range=(1e-3, None))
    slab_mpc_h: float = param(5.0, "thickness of the slab projected into every map [Mpc/h]", range=(1e-3, None))
    maps_per_sim: int = param(15, "maps per simulation (CAMELS: 5 slabs x 3 axes)", range=(1, None))
    pool: int = param(1, "average-pool the maps by this factor per side before storing (e.g. 4: 256^2 -> 64^2, a "
                         "CPU-sized problem; surface densities keep their units)", range=(1, 64))
    log_offsets: dict[str, float] = param({"Mstar": 1.0, "Mcdm": 0.0},
                                          "normalisation x -> (log10(x + offset) - mean) / std, per field")
    split_fractions: list[float] = param([0.8, 0.1, 0.1], "train/val/test fractions of the simulations")
    split_seed: int = param(342, "seed of the split by simulation", range=(0, 2**31 - 1))
    maps_per_chunk: int = param(1, "maps per Zarr chunk (the unit a reader decompresses)", range=(1, None))
    maps_per_shard: int = param(15, "maps per Zarr shard (the unit a writer owns; a multiple of maps_per_chunk)",
                                range=(1, None))
    augment_dihedral: bool = param(True, "random element of the 8 flips/rotations, same for condition and target")
    augment_roll: bool = param(True, "random periodic roll, same for condition and target")
    crop: int = param(0, "train on random periodic crops of this side [pixels] (same for condition and target, "
                         "position from the seeded sampler); 0 = whole maps", range=(0, None))
    batch_size: int = param(12, "micro-batch per rank", range=(1, None))
    num_workers: int = param(0, "DataLoader workers (spawned, never forked)", range=(0, 256))
    cache_mb: float = param(0.0, "keep the training maps each process (rank, DataLoader worker) reads, normalised, "
                                 "up to this many MB, so later epochs skip the store (same numbers); 0 = off",
                            range=(0.0, None))
    seed: int = param(7, "seed of the sample order and augmentations", range=(0, 2**31 - 1))


@dataclass
class ModelConfig:
    """The model, tagged by ``kind`` (its family): ``vdm`` is the conditional VDM's score U-Net (papers: 48
    channels, 4 levels x1/x2/x4/x8, attention at the bottleneck; family options in ``model.vdm``);
    ``regressor`` is a deterministic field-to-field CNN (``channels`` wide, ``blocks_per_level`` residual
    blocks, MSE); ``dm2gal`` is the 3D patch CNN (family options in ``model.dm2gal``)."""

    kind: str = param("vdm", "model family: vdm (conditional diffusion), regressor (deterministic map-to-map, MSE "
                             "on the normalised target), dm2gal (3D patches -> central voxel), two_phase "
                             "(classifier + gated regressor, model.two_phase) or emulator (a VDM of maps from "
                             "model.params alone; model.emulator)", choices=MODEL_KINDS)
    channels: int = param(48, "channels of the first level (E); level i has E * channel_mults[i]", range=(1, None))
    channel_mults: list[int] = param([1, 2, 4, 8], "channel multiplier per level; each level halves the resolution")
    blocks_per_level: int = param(1, "residual blocks per level", range=(1, 16))
    attention: bool = param(True, "self-attention between the two bottleneck residual blocks")
    attention_heads: int = param(1, "heads of the bottleneck attention", range=(1, 64))
    norm_groups: int = param(8, "GroupNorm groups (must divide every channel count)", range=(1, None))
    norm: str = param("group", "normalisation: group (per-map GroupNorm: not local, cannot be tiled exactly), "
                               "pixel (LayerNorm over channels at each pixel: local) or none",
                      choices=("group", "pixel", "none"))
    attention_radius: int = param(0, "with attention on: 0 = global (every bottleneck pixel attends to all: not "
                                     "local), r > 0 = local, over the (2r+1)^2 periodic neighbourhood",
                                  range=(0, None))
    dropout: float = param(0.1, "dropout in every residual block", range=(0.0, 1.0))
    add_zt: bool = param(True, "return net(z_t) + z_t, the papers' base-measure residual")
    backbone: str = param("cnn", "regressor: cnn (a residual CNN of blocks_per_level blocks) or unet (the VDM's "
                                 "U-Net of these options, used deterministically)", choices=("cnn", "unet"))
    params: list[str] = param([], "CAMELS parameters the model is conditioned on, each scaled to [0, 1] over its "
                                  "prior and added to the time embedding ([] = none; e.g. [Omega_m, sigma_8])",
                              choices=PARAM_NAMES)
    vdm: VDMOptions = field(default_factory=VDMOptions)
    dm2gal: Dm2galOptions = field(default_factory=Dm2galOptions)
    two_phase: TwoPhaseOptions = field(default_factory=TwoPhaseOptions)
    emulator: EmulatorOptions = field(default_factory=EmulatorOptions)


@dataclass
class TrainConfig:
    """The DeepSpeed trainer (``python -m hpc_vdm.train``)."""

    run_dir: str = param("runs/default", "run folder: config.json, checkpoints/, metrics.csv, tb/, export/")
    steps: int = param(100_000, "optimizer steps of the whole run (resumes count towards it)", range=(1, None))
    global_batch: int = param(0, "checked against data.batch_size x grad_accum x world; 0 = derived", range=(0, None))
    grad_accum: int = param(1, "micro-batches per optimizer step", range=(1, None))
    zero_stage: int = param(1, "DeepSpeed ZeRO stage (0 off, 1 optimizer, 2 +gradients, 3 +parameters)",
                            range=(0, 3))
    precision: str = param("fp32", "fp32, or bf16 weights and activations (fp32 loss terms)", choices=("fp32", "bf16"))
    lr: float = param(1e-4, "peak AdamW learning rate", range=(0.0, None))
    lr_min: float = param(0.0, "floor of the cosine schedule", range=(0.0, None))
    lr_schedule: str = param("constant", "constant, or cosine annealing with warm restarts",
                             choices=("constant", "cosine_restarts"))
    warmup_steps: int = param(0, "linear warm-up steps", range=(0, None))
    restart_steps: int = param(10_000, "cosine_restarts: length of the first cycle [steps]", range=(1, None))
    restart_mult: int = param(1, "cosine_restarts: growth factor of each following cycle", range=(1, 16))
    weight_decay: float = param(1e-5, "AdamW weight decay", range=(0.0, None))
    betas: list[float] = param([0.9, 0.999], "AdamW betas")
    grad_clip: float = param(0.5, "gradient clipping norm (0 disables; always written explicitly)", range=(0.0, None))
    ema_decay: float = param(0.9999, "EMA decay of the weights (0: the EMA follows the weights)", range=(0.0, 1.0))
    seed: int = param(7, "seed of weights, diffusion times and noise (per rank and step)", range=(0, 2**31 - 1))
    device: str = param("auto", "auto (GPU if present), cpu or cuda", choices=("auto", "cpu", "cuda"))
    channels_last: bool = param(False, "channels_last memory format on GPU")
    compile: bool = param(False, "torch.compile the score network")
    log_every: int = param(10, "steps between metrics.csv / TensorBoard rows", range=(1, None))
    tensorboard: bool = param(True, "write TensorBoard events to run_dir/tb")
    val_every: int = param(1000, "steps between validations (0: only at the end)", range=(0, None))
    val_maps: int = param(16, "held-out maps for the deterministic bound", range=(1, None))
    val_times: int = param(8, "fixed diffusion times per map of the deterministic bound", range=(1, 1024))
    val_sample_maps: int = param(2, "held-out maps sampled for P(k) ratio and r(k) (0: skip)", range=(0, None))
    val_sample_steps: int = param(24, "network evaluations of each validation sample (with sampler.kind)",
                                  range=(1, 100_000))
    select_on: str = param("", "validation metric that picks the best checkpoint (best.json); '' = the task's "
                           "first: vdm val_bound (or val_pk_ratio_err, lower is better; val_r_mean, higher is "
                           "better), regressor val_mse")
    ckpt_every: int = param(1000, "steps between checkpoints", range=(1, None))
    ckpt_minutes: float = param(30.0, "minutes between checkpoints (whichever comes first; 0 disables)",
                                range=(0.0, None))
    keep_last: int = param(3, "checkpoints kept (the best by validation is always kept)", range=(1, None))
    resume: bool = param(True, "continue from run_dir/checkpoints when it holds a checkpoint")
    export: bool = param(True, "write run_dir/export/model.pt at the end")
    init_from: str = param("", "an exported model whose EMA weights start this run (the progressive option: a 64^2 "
                               "model initialises the 256^2 one; a U-Net is size-agnostic); not used on resume")
    export_tag: str = param("latest", "checkpoint exported at the end: latest, or best (by train.select_on)",
                            choices=("latest", "best"))
    progress: bool = param(True, "progress bar on rank 0")


@dataclass
class TrainedConfig:
    """The trained model a command uses (``sample``, ``tile``, ``evaluate``, ``paint``, ``baselines``)."""

    model: str = param("runs/default/export/model.pt", "exported model file (python -m hpc_vdm.export)")
    which: str = param("ema", "weights: ema or raw", choices=("ema", "raw"))
    device: str = param("auto", "auto (the GPU of the local rank if present), cpu or cuda", choices=DEVICES)


@dataclass
class SamplerConfig:
    """How a diffusion model draws posterior samples (``sample``, ``tile``, ``evaluate``)."""

    kind: str = param("unipc", "the sampler: unipc (UniPC-3: P(k) within 2% of the exact answer from 18 network "
                               "evaluations on Gaussian-field oracles), dpm2m/dpm3m (DPM-Solver++), their _sde "
                               "forms, or ancestral (the papers' reference, VDM eq. 34: 5% short in power at 250)",
                      choices=SAMPLER_KINDS)
    steps: int = param(24, "network evaluations per sample (the papers' ancestral sampler: 250)", range=(1, 100_000))
    clip_log: list[float] | None = param(None, "[lo, hi] of log10(target + offset): clip the denoiser's data "
                                               "prediction to it at every step (static thresholding), for a bounded "
                                               "target, e.g. [0, 12.25] for log10(1 + M*) maps; null: no clipping")

    def __post_init__(self):
        c = self.clip_log
        if c is not None and (len(c) != 2 or not c[0] < c[1]):
            raise ConfigError(f"sampler.clip_log: expected [lo, hi] with lo < hi, got {c!r}")


@dataclass
class SampleConfig:
    """Posterior samples of held-out maps from an exported model (``python -m hpc_vdm.sample``)."""

    store: str = param("", "maps store with the held-out maps ('' = the store the model was trained on)")
    split: str = param("test", "held-out split the maps come from", choices=("val", "test", "train"))
    n_maps: int = param(4, "held-out maps, spread over the simulations of the split", range=(1, None))
    n_samples: int = param(8, "posterior samples per map (1 for a deterministic model)", range=(1, None))
    seed: int = param(0, "sampling seed: noise keyed by (seed, map, sample, step)", range=(0, 2**31 - 1))
    out: str = param("runs/default/samples", "output folder: samples.zarr, summary.json, samples.png")
    progress: bool = param(True, "progress bar")


@dataclass
class TileConfig:
    """A trained map model applied to big volumes, slab by slab, by periodic tiling (``python -m hpc_vdm.tile``)."""

    volume: str = param("tng300", "volume preset (camels, tng100, tng300; configs/volumes/) or a preset YAML")
    input: str = param("mock", "mock, a 3D stellar-mass grid (.zarr/.h5/.hdf5), or TNG-style snapshot HDF5 "
                               "chunks (a folder or glob with PartType4/Coordinates and Masses)")
    input_key: str = param("Mstar", "array/dataset name of a grid input")
    axes: list[int] = param([], "projection axes ([] = every axis the input has: 0, 1, 2 for a grid, snapshot or "
                                "full-cube mock; 2 for the default thin-slab mock)")
    slabs: list[int] = param([], "slab indices along each axis ([] = every slab the input has)")
    n_samples: int = param(1, "posterior samples per slab (1 for a deterministic model)", range=(1, None))
    tile: int = param(192, "tile core [pixels]; tile + 2 halo is what the network sees", range=(1, None))
    halo: int = param(32, "periodic halo on each side of a tile [pixels]", range=(0, None))
    blend: str = param("core", "how overlapping tile predictions are combined", choices=("core", "cosine", "gaussian"))
    batch_size: int = param(8, "tiles per network call (each carries all samples of a pass)", range=(1, None))
    samples_per_pass: int = param(4, "samples of one slab drawn together (one network batch)", range=(1, None))
    seed: int = param(0, "sampling seed: noise keyed by (seed, slab, sample, step)", range=(0, 2**31 - 1))
    force: bool = param(False, "tile a network that is not local (per-window GroupNorm without frozen statistics, "
                               "global attention), or with a halo below its receptive radius, or windows off its "
                               "stride grid: the tiles will show")
    out: str = param("out/tng300.zarr", "output Zarr store (resumed when it exists with the same configuration)")
    progress: bool = param(True, "progress bar on rank 0")
    mock_slabs: int = param(1, "mock input: slabs in the depth of the PM box (all of the preset's = a full cube; "
                               "5 = a CAMELS box's 25 Mpc/h: one slab's periodic box projects ~2x the clustering)",
                            range=(1, None))
    mock_spacing_mpc_h: float = param(0.1953125, "mock input: mean particle spacing [Mpc/h] (25/128: the demo mock)",
                                      range=(1e-3, None))
    mock_pm_steps: int = param(10, "mock input: PM steps (the demo mock's: 20)", range=(1, 1000))
    mock_seed: int = param(0, "mock input: initial-condition seed", range=(0, 2**31 - 1))


@dataclass
class EvaluateConfig:
    """The report of an exported map model on held-out maps (``python -m hpc_vdm.evaluate``)."""

    store: str = param("", "maps store with the held-out maps ('' = the store the model was trained on)")
    split: str = param("test", "held-out split", choices=("val", "test", "train"))
    n_maps: int = param(8, "held-out maps, drawn from every simulation of the split in turn", range=(1, None))
    n_samples: int = param(10, "posterior samples per map (1 for a deterministic model)", range=(1, None))
    seed: int = param(0, "seed of the map choice and of the sampling noise", range=(0, 2**31 - 1))
    one_p_store: str = param("", "maps store of a 1P set: P(k) ratio at low, fiducial and high one_p_params ('' = skip)")
    one_p_params: list[str] = param(["Omega_m", "A_SN1"], "parameters of the 1P panel", choices=PARAM_NAMES)
    one_p_maps: int = param(2, "maps per 1P simulation (an emulator: the truths per 1P value)", range=(1, None))
    emulator_sims: int = param(3, "an emulator: simulations of the split whose parameters it generates n_samples "
                                  "fields at (spectra with z-scores, pixel histograms, chi^2_r)", range=(1, None))
    cv_store: str = param("", "maps store of a CV set: reduced chi^2 of P(k) against its truths ('' = skip)")
    suites: dict[str, str] = param({}, "other suites' maps stores {name: store}: the model applied across suites, "
                                       "normalised with its training suite's statistics")
    suite_maps: int = param(4, "maps per other suite", range=(1, None))
    tile_store: str = param("", "an hpc_vdm.tile output: P(k) of its slab against the same slab drawn whole, and "
                                "against the held-out maps")
    tile_whole_max_pixels: int = param(1024, "draw the tile store's slab whole (the tiling check) up to this side "
                                             "[px]", range=(0, None))
    linear: bool = param(True, "score the linear transfer-function baseline (fitted on the store's training maps)")
    baselines: dict[str, str] = param({}, "other exported models scored on the same maps, {name: model.pt} (e.g. "
                                          "{regressor: runs/reg/export/model.pt}): one draw each, beside the model")
    hod: bool = param(False, "also score the 2D HOD of Sether+24 on the same maps (fitted on the training sims' "
                             "halo catalogues; baselines.hod_*)")
    out: str = param("runs/default/eval", "output folder: metrics.json and report/ (figures, summary.md)")
    progress: bool = param(True, "progress bar")


@dataclass
class VolumeConfig:
    """3D grids -> the dm2gal volume store (``python -m hpc_vdm.prepare_volume``; written to ``data.store``)."""

    source_dir: str = param("data/cmd", "folder with CMD-layout Grids_{field}_{suite}_{set}_{N}_z=0.00.npy")
    grid_n: int = param(64, "voxels per side of the CMD grids (the N of the file names)", range=(8, 16384))
    sim: int = param(0, "simulation (row) of the CMD grids", range=(0, None))
    dm_field: str = param("Mtot", "CMD field of the dark matter input: Mtot (gravity-only twin) or Mcdm (hydro)",
                          choices=("Mtot", "Mcdm"))
    grids: dict[str, str] = param({}, "explicit grid files instead of the CMD layout, {dm, subhalo[, stellar]: "
                                      "path.npy | path.h5[:dataset]} (TNG-style 3D grids)")
    grid_units: str = param("density", "what grid values are: density [(Msun/h)/(Mpc/h)^3] or mass per voxel "
                                       "[Msun/h]; the store holds mass per voxel", choices=("density", "mass"))
    box_mpc_h: float = param(25.0, "side of the volume [Mpc/h]", range=(1e-3, None))
    test_box: list[float] = param([0.03125, 0.455566], "test sub-cube [lo, hi) per axis as box fractions "
                                                       "(the paper's voxels 64..932 of 2048)")
    val_box: list[float] = param([0.488281, 0.879395], "validation sub-cube [lo, hi) per axis as box fractions "
                                                       "(the paper's 1000..1800 of 2048); train = the rest")
    chunk: int = param(32, "voxels per side of a Zarr chunk of the volume store", range=(4, 4096))
    min_log_mstar: float = param(8.0, "stellar statistics: over training voxels with log10(1 + M*) above this",
                                 range=(0.0, 20.0))


@dataclass
class PaintConfig:
    """A trained dm2gal painted densely over a whole 3D volume, out of core (``python -m hpc_vdm.paint``)."""

    volume: str = param("data/volume.zarr", "volume store to paint (python -m hpc_vdm.prepare_volume)")
    out: str = param("out/dm2gal_paint.zarr", "output Zarr store (resumed when it exists with the same "
                                              "configuration)")
    progress: bool = param(True, "progress bar on rank 0")
    block: int = param(32, "voxels per side of a block (and of an output chunk)", range=(1, 4096))
    halo: int = param(32, "periodic halo each side of a block; at least the receptive radius", range=(0, 4096))
    mask: str = param("subhalo", "where stars go: subhalo (voxels with subhalo mass, known in gravity-only runs), "
                                 "truth (voxels above min_log_mstar in the true stellar field) or none",
                      choices=("subhalo", "truth", "none"))
    max_block_gb: float = param(16.0, "refuse blocks whose working memory exceeds this [GB]", range=(1e-3, None))


@dataclass
class BaselinesConfig:
    """dm2gal against the paper's HOD on the volume's test cube (``python -m hpc_vdm.baselines``)."""

    catalogue: str = param("", "FoF/Subfind HDF5 of the hydro run the HOD is fitted on ('' = the CMD layout "
                               "FOF_Subfind_{suite}_{set}_z=0.00/fof_subhalo_tab_{sim:04d}.hdf5 in volume.source_dir)")
    catalogue_dmo: str = param("", "the gravity-only run's catalogue the HOD paints ('' = the hydro one: the mock's "
                                   "halos come from one gravity run)")
    hod_bins: int = param(20, "log bins of host halo mass of the HOD", range=(1, 1000))
    bk_kf: list[float] = param([3.0, 4.0], "k1, k2 of the bispectrum in units of the test cube's fundamental "
                                           "(the paper: 3, 4 h/Mpc = 15, 20 k_F of its cube)")
    out: str = param("runs/dm2gal/compare", "folder of metrics.json and fig1.png")
    seed: int = param(0, "seed of the HOD draws", range=(0, 2**31 - 1))
    hod_catalogues: str = param("", "2D HOD: folder of the N-body twin's fof_subhalo_tab_{sim:04d}.hdf5 ('' = the "
                                    "CMD layout beside the store's source: the mock's halos are the N-body run's)")
    hod_params: list[float] = param([], "2D HOD: [log10 M_min, log10 M_1, alpha] to use ([] = fit them)")
    hod_satellites: str = param("random", "2D HOD satellites: random in R_200c (the paper) or nfw", choices=("random", "nfw"))
    hod_fit_sims: int = param(16, "2D HOD: training simulations the fit paints", range=(1, None))


@dataclass
class RunConfig:
    """Everything one run of any command reads: sections by concern (data, model and its family options,
    training, the trained model in use, the sampler, each command's own options)."""

    mock: MockConfig = field(default_factory=MockConfig)
    data: DataConfig = field(default_factory=DataConfig)
    volume: VolumeConfig = field(default_factory=VolumeConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    trained: TrainedConfig = field(default_factory=TrainedConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)
    tile: TileConfig = field(default_factory=TileConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    paint: PaintConfig = field(default_factory=PaintConfig)
    baselines: BaselinesConfig = field(default_factory=BaselinesConfig)
    infer: InferConfig = field(default_factory=InferConfig)
