#!/usr/bin/env python
"""What a sample costs: P(k), r(k) and calibration of a trained model's posterior against network evaluations (JSON).

    python tools/sampler_cost.py --model out/science/run/export/model.pt [--n-maps 12] [--n-samples 8] \\
        [--nfe unipc:8,unipc:16,unipc:24,unipc:32,unipc:64,ancestral:250] [--out docs/results/science/sampler_cost.json]
        [--clip-log 0,12.25]   # then a setting "unipc:24:clip" clips x̂ to that range of log10(target + offset)

For held-out maps of the model's store (drawn as ``evaluate`` draws them: stratified over the test
simulations, noise keyed by (seed, map, sample, step)), each sampler setting gives: the band scores of the
samples and of their mean (:mod:`hpc_vdm.spectra.scores`), the 68%/95% rank coverage per pixel, per map mean
level and per P(k) band (:mod:`hpc_vdm.evaluate.analysis`), the deviation of every number from the
reference setting (the last one), and the seconds it took. ``cheapest_within_2pct`` names the cheapest
setting whose samples' P ratio and r(k) in every band are within 2% of the reference's.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from hpc_vdm.bundle import load_bundle
from hpc_vdm.data.dataset import stratified_maps
from hpc_vdm.evaluate import analysis
from hpc_vdm.families import DrawSpec
from hpc_vdm.inference.maps import draw_maps, open_for, read_pairs


def flat(m: dict) -> dict:
    """{"samples/overdensity/k<kN/4/r": value, ...} of the numbers compared between settings."""
    out = {}
    for who in ("samples", "posterior_mean"):
        for space, bands in m[who].items():
            for band, s in bands.items():
                for key in ("pk_ratio", "r"):
                    out[f"{who}/{space}/{band}/{key}"] = s[key]
    for name, c in m.get("calibration", {}).items():
        for cov in c["coverage"]:
            out[f"coverage/{name}/{cov['level']}"] = cov["observed"] - cov["expected"]
    return out


def cheapest_within(rows: dict, reference: str, tol: float = 0.02) -> str:
    """The setting of fewest network calls whose samples' P ratio and r(k), both spaces, every band up to k_Nyq/2,
    are each within ``tol`` (relative) of the ``reference`` setting's: the reference itself when no other is."""
    ref = rows[reference]["numbers"]
    spectral = [k for k in ref if k.startswith("samples/") and "kN/2-kN" not in k]
    ok = [s for s, r in rows.items() if all(abs(r["numbers"][k] / ref[k] - 1) <= tol for k in spectral)]
    return min(ok, key=lambda s: rows[s]["nfe"])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--n-maps", type=int, default=12)
    p.add_argument("--n-samples", type=int, default=8)
    p.add_argument("--nfe", default="unipc:8,unipc:16,unipc:24,unipc:32,unipc:64,ancestral:250")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clip-log", default=None, help="LO,HI of log10(target + offset) for the settings marked :clip")
    p.add_argument("--out", default="out/sampler_cost.json")
    a = p.parse_args(argv)
    settings = [s.split(":") for s in a.nfe.split(",")]
    if any(len(s) not in (2, 3) or s[2:] not in ([], ["clip"]) for s in settings):
        p.error(f"--nfe: expected SAMPLER:NFE[:clip] settings, got {a.nfe!r}")
    clip = None if a.clip_log is None else tuple(float(v) for v in a.clip_log.split(","))
    if any(s[2:] for s in settings) and clip is None:
        p.error("a setting marked :clip needs --clip-log LO,HI")
    b = load_bundle(a.model)
    root, attrs = open_for(b, b.config.data.store)
    maps = stratified_maps(attrs, "test", a.n_maps, a.seed)
    cond, truth, params = read_pairs(b, root, b.config.data.store, maps)
    box = attrs["box_size_mpc_h"]
    rows = {}
    for setting, (sampler, steps, *flags) in zip(a.nfe.split(","), settings):
        t0 = time.time()
        draws = draw_maps(b, cond, maps, n_samples=a.n_samples, params=params, shape=truth.shape[-2:],
                          spec=DrawSpec(sampler=sampler, steps=int(steps), seed=a.seed,
                                        clip_log=clip if flags else None))
        secs = time.time() - t0
        m, _ = analysis.analyse(truth, cond, draws, box, seed=a.seed, log_offset=b.norm.target_offset)
        rows[setting] = {"sampler": sampler, "nfe": int(steps), "clip_log": clip if flags else None, "seconds": secs,
                         "numbers": flat(m)}
        print(setting, f"{secs:.0f} s", json.dumps({k: round(v, 3) for k, v in flat(m).items() if "/r" in k})[:300])
    reference = a.nfe.split(",")[-1]
    ref = rows[reference]["numbers"]
    for r in rows.values():
        r["max_dev_from_reference"] = {k: v - ref[k] for k, v in r["numbers"].items()}
    cheapest = cheapest_within(rows, reference)
    doc = {"model": a.model, "maps": maps, "n_samples": a.n_samples, "reference": reference,
           "cheapest_within_2pct": cheapest, "compared": "samples' P ratio and r(k), both spaces, bands up to "
                                                         "k_Nyq/2", "settings": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(doc, indent=1) + "\n")
    print("cheapest within 2% of", doc["reference"], ":", cheapest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
