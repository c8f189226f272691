"""Independent oracles for the tests (deliberately not hpc_vdm code)."""
from __future__ import annotations

import numpy as np


def power_2d(delta: np.ndarray, box: float) -> tuple[np.ndarray, np.ndarray]:
    """Plain full-plane FFT P(k) of a 2D overdensity with kF-wide floor bins (DC dropped)."""
    n = delta.shape[-1]
    fk = np.fft.fftn(delta, axes=(-2, -1))
    p = (np.abs(fk) ** 2) * (box / n**2) ** 2
    kx = np.fft.fftfreq(n, d=1.0 / n)
    kmag = np.sqrt(kx[:, None] ** 2 + kx[None, :] ** 2)
    idx = np.floor(kmag).astype(int).ravel()
    p = p.reshape(*p.shape[:-2], -1)
    counts = np.bincount(idx)
    sums = np.stack([np.bincount(idx, weights=row, minlength=counts.size) for row in p.reshape(-1, idx.size)])
    pk = (sums / counts)[:, 1:n // 2]
    k = np.arange(1, n // 2) * 2 * np.pi / box
    return k, pk.reshape(*p.shape[:-1], -1)


def cross_r_2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """r(k) = P_ab / sqrt(P_aa P_bb) per floor bin (1..N/2-1) of two 2D fields."""
    n = a.shape[-1]
    fa, fb = np.fft.fftn(a), np.fft.fftn(b)
    kx = np.fft.fftfreq(n, d=1.0 / n)
    idx = np.floor(np.sqrt(kx[:, None] ** 2 + kx[None, :] ** 2)).astype(int).ravel()
    pab = np.bincount(idx, (fa * fb.conj()).real.ravel())
    paa = np.bincount(idx, (np.abs(fa) ** 2).ravel())
    pbb = np.bincount(idx, (np.abs(fb) ** 2).ravel())
    return (pab / np.sqrt(paa * pbb))[1:n // 2]


def write_cmd(root, n_sims: int = 2, pixels: int = 16, suite: str = "IllustrisTNG", set_: str = "LH",
              seed: int = 0, mstar=None, mcdm=None, params=None, dtype=np.float32):
    """A small valid CMD set of positive random maps (or the given arrays) in the real file layout."""
    from hpc_vdm.data import camels

    rng = np.random.default_rng(seed)
    n = 15 * n_sims
    if mstar is None:
        mstar = (rng.lognormal(8, 2, (n, pixels, pixels)) * (rng.random((n, pixels, pixels)) < 0.3)).astype(dtype)
    if mcdm is None:
        mcdm = rng.lognormal(25, 0.5, (n, pixels, pixels)).astype(dtype)
    if params is None:
        params = rng.random((n_sims, 6)) + 0.5
    np.save(camels.maps_path(root, "Mstar", suite, set_), mstar)
    np.save(camels.maps_path(root, "Mcdm", suite, set_), mcdm)
    camels.save_params(camels.params_path(root, suite, set_), params)
    return mstar, mcdm, params


# ---------------------------------------------------------------------------------------------
# Running the trainer as users do (subprocesses with a clean launcher environment)
# ---------------------------------------------------------------------------------------------
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
LAUNCHER_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "SLURM_JOB_ID", "SLURM_PROCID",
                 "SLURM_STEP_NUM_TASKS", "SLURM_NTASKS", "PMI_RANK", "OMPI_COMM_WORLD_RANK")


def clean_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in LAUNCHER_VARS}
    env.update(OMP_NUM_THREADS="1", DS_ACCELERATOR="cpu", PYTHONUNBUFFERED="1", **extra)
    return env


def files(root: Path) -> dict:
    """{relative path: SHA-256} of every file under ``root`` (hidden ones included)."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def kill_when(cmd: list[str], ready, *, env: dict | None = None, cwd=None, timeout: float = 300) -> list[int]:
    """Start ``cmd``, SIGKILL it once ``ready()`` is true (it must not have finished by then); returns the pids of
    its children at that moment. The command runs niced, so that on a busy machine this watcher is not starved
    while the command races past the point."""
    with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe: a chatty command never blocks on it
        proc = subprocess.Popen(["nice", "-n", "10", *cmd], env=env or clean_env(PYTHONPATH=str(REPO)), cwd=cwd,
                                stdout=subprocess.DEVNULL, stderr=err, text=True)  # nice execs: proc.pid is cmd's
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.02)
        if proc.poll() is not None:
            err.seek(0)
            raise AssertionError(f"finished before it could be killed: {err.read()[-2000:]}")
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        pids = [int(c) for c in children.read_text().split()] if children.exists() else []
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    return pids


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie does not count)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def train_cmd(store, run_dir, *sets, nproc: int = 1) -> list[str]:
    launcher = ([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", "-m"]
                if nproc > 1 else [sys.executable, "-m"])
    cmd = launcher + ["hpc_vdm.train", str(REPO / "configs" / "train_tiny.yaml"), "--run-dir", str(run_dir),
                      "--set", f"data.store={store}", "--set", "train.val_sample_maps=0", "--set", "train.progress=false",
                      "--set", "sampler.kind=ancestral"]  # few-step samplers need a trained model
    for s in sets:
        cmd += ["--set", s]
    return cmd


def train(store, run_dir, *sets, nproc: int = 1, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(train_cmd(store, run_dir, *sets, nproc=nproc), env=clean_env(), capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def metrics(run_dir, kind: str = "train") -> list[dict]:
    import csv

    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return [r for r in csv.DictReader(f) if r["kind"] == kind]


def exported(run_dir) -> dict:
    import torch

    return torch.load(Path(run_dir) / "export" / "model.pt", map_location="cpu", weights_only=False)


def preempt(store, run_dir, *sets, nproc: int = 1, at_step: int = 2, timeout: float = 300):
    """Start a long run, send SIGUSR2 to every rank once ``at_step`` is logged; returns (returncode, stderr)."""
    proc = subprocess.Popen(train_cmd(store, run_dir, "train.steps=100000", *sets, nproc=nproc), env=clean_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + timeout
    path = Path(run_dir) / "metrics.csv"
    while time.time() < deadline and proc.poll() is None:
        if path.is_file() and len(path.read_text().splitlines()) > at_step:
            break
        time.sleep(0.2)
    ranks = [proc.pid] if nproc == 1 else [int(p) for p in subprocess.run(
        ["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()]
    for pid in ranks:
        os.kill(pid, signal.SIGUSR2)  # what SLURM's --signal=USR2@T does to every task of the step
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


# ---------------------------------------------------------------------------------------------
# The one tiny exported model the command tests share
# ---------------------------------------------------------------------------------------------
def export_tiny(path, store_attrs: dict, *, seed: int = 0, jitter: float = 0.0, kind: str = "vdm", store=None,
                model: dict | None = None, **data):
    """A tiny model (8 channels, mults [1, 2, 2], GroupNorm 4, no dropout) of family ``kind`` with random
    weights, exported as if trained on a store with ``store_attrs``. ``jitter`` adds noise to every weight
    (zero-initialised outputs would make every VDM sample pure noise); ``data``/``model`` set config keys."""
    import torch

    from hpc_vdm.bundle import build_module, write_export
    from hpc_vdm.config import RunConfig, to_dict

    cfg = RunConfig()
    cfg.model.kind = kind
    cfg.model.channels, cfg.model.channel_mults, cfg.model.norm_groups, cfg.model.dropout = 8, [1, 2, 2], 4, 0.0
    for k, v in (model or {}).items():
        setattr(cfg.model, k, v)
    if store is not None:
        cfg.data.store = str(store)
    for k, v in data.items():
        setattr(cfg.data, k, v)
    torch.manual_seed(seed)
    net = build_module(cfg)
    if jitter:
        with torch.no_grad():
            for p in getattr(net, "score", net).parameters():  # the network, not the VDM's γ schedule
                p.add_(jitter * torch.randn_like(p))
    state = {k: v.float() for k, v in net.state_dict().items()}
    return write_export(path, raw=state, ema=state, config=to_dict(cfg), store_attrs=store_attrs, step=0, tag="test")


def overflowing(b):
    """The bundle ``b`` with its target's log10 spread scaled up 10^4×, so that its draws overflow float32."""
    import dataclasses

    st = b.norm.stats[b.norm.target]
    stats = {**b.norm.stats, b.norm.target: {**st, "std": 1e4 * st["std"]}}
    return dataclasses.replace(b, norm=dataclasses.replace(b.norm, stats=stats))
