"""Unweighted loss_diff (bits/dim) per diffusion time t on training and validation maps, per checkpoint (EMA weights).

A measurement script kept beside its results (docs/results/science and dm2galaxy), not a product command:
    python docs/results/science/loss_per_t.py RUN_DIR STORE OUT_DIR step00000300,step00001800 [N_MAPS=24]
exports each checkpoint tag to OUT_DIR/<tag>.pt, then scores N_MAPS maps spread over each split at 11 fixed times
with noise keyed by the map (the same draws for every checkpoint) -> OUT_DIR/per_t_<run name>.json."""
import json, sys
from pathlib import Path
import numpy as np, torch
from hpc_vdm.training.export import export_run
from hpc_vdm.bundle import load_bundle
from hpc_vdm.data.dataset import MapsDataset
from hpc_vdm.data import camels

run, store, out = Path(sys.argv[1]), sys.argv[2], Path(sys.argv[3])
tags = sys.argv[4].split(",")
times = torch.tensor([0.02, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.98])
res = {}
torch.set_num_threads(2)
for tag in tags:
    exp = out / f"{tag}.pt"
    if not exp.exists():
        export_run(run, tag, exp)
    b = load_bundle(exp)
    vdm, names = b.module, b.config.model.params
    for split in ("train", "val"):
        ds = MapsDataset(store, split, condition=b.config.data.condition, target=b.config.data.target)
        idx = np.linspace(0, len(ds) - 1, int(sys.argv[5]) if len(sys.argv) > 5 else 24).astype(int)
        tot = torch.zeros(len(times))
        for j in idx:
            it = ds[int(j)]
            x, c = it["target"][None], it["condition"][None]
            p = torch.from_numpy(camels.normalise_params(it["params"].numpy(), names))[None] if names else None
            g = torch.Generator().manual_seed(int(j))
            K = len(times)
            eps = torch.randn((K, *x.shape[1:]), generator=g); eps0 = torch.randn((K, *x.shape[1:]), generator=g)
            with torch.no_grad():
                o = vdm(x.repeat(K, 1, 1, 1), c.repeat(K, 1, 1, 1), None if p is None else p.repeat(K, 1), t=times, eps=eps, eps_0=eps0, weighted=False)
            tot += o.loss_diff.detach().reshape(K)
        res[f"{tag} {split}"] = (tot / len(idx)).tolist()
        print(tag, split, " ".join(f"{v:7.3f}" for v in res[f"{tag} {split}"]), flush=True)
print("t", " ".join(f"{v:7.2f}" for v in times.tolist()))
(out / f"per_t_{run.name}.json").write_text(json.dumps({"t": times.tolist(), **res}, indent=1))
