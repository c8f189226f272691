"""#24 item 3, an ablation: the D4-symmetrised posterior mean against the plain draws, on `make science`'s 24 test
maps (evaluate's choice: stratified, seed 0; UniPC 24; the same keys). The VDM draws 2 of its 16 samples under each
of the 8 flips/rotations of the condition and maps them back (the same cost); the regressor averages its 8
predictions (8x its cost). Usage: python d4.py VDM.pt REGRESSOR.pt STORE OUT.json (docs/results/science/d4_symmetrised)."""
import json
import sys

import numpy as np

from hpc_vdm.bundle import load_bundle
from hpc_vdm.data.dataset import stratified_maps
from hpc_vdm.data.transforms import dihedral
from hpc_vdm.evaluate import analysis
from hpc_vdm.families import DrawSpec, for_bundle
from hpc_vdm.inference.maps import open_for, read_pairs


def undo(x, k):
    """Inverse of dihedral element k on the last two axes (flips first, then the transpose)."""
    if k & 1:
        x = x[..., :, ::-1]
    if k & 2:
        x = x[..., ::-1, :]
    if k & 4:
        x = np.swapaxes(x, -1, -2)
    return np.ascontiguousarray(x)


def main(vdm_path, reg_path, store, out):
    rng = np.random.default_rng(0)
    a = rng.random((3, 8, 8))
    assert all(np.array_equal(undo(dihedral(a, k), k), a) for k in range(8))
    b, r = load_bundle(vdm_path), load_bundle(reg_path)
    root, attrs = open_for(b, store)
    maps = stratified_maps(attrs, "test", 24, 0)
    cond, truth, params = read_pairs(b, root, store, maps)
    spec = DrawSpec(sampler="unipc", steps=24, seed=0)
    fam, rfam = for_bundle(b), for_bundle(r)
    plain = fam.predict(b, cond, keys=maps, samples=list(range(16)), spec=spec, params=params)      # (16, n, H, W)
    sym = np.empty_like(plain)
    for k in range(8):
        sym[2 * k:2 * k + 2] = undo(fam.predict(b, np.ascontiguousarray(dihedral(cond, k)), keys=maps,
                                                samples=[2 * k, 2 * k + 1], spec=spec, params=params), k)
    reg = rfam.predict(r, cond, keys=maps, samples=[0], spec=spec, params=params)
    reg_sym = np.mean([undo(rfam.predict(r, np.ascontiguousarray(dihedral(cond, k)), keys=maps, samples=[0],
                                         spec=spec, params=params), k) for k in range(8)], axis=0)
    box = attrs["box_size_mpc_h"]
    res = {}
    for name, draws, det in (("vdm", plain, False), ("vdm_d4", sym, False), ("regressor", reg, True),
                             ("regressor_d4", reg_sym, True)):
        post, _ = analysis.analyse(truth, cond, draws, box, deterministic=det, log_offset=b.norm.target_offset)
        res[name] = {sp: {blk: {band: round(v["r"], 4) for band, v in post[blk][sp].items()}
                          for blk in (("samples",) if det else ("posterior_mean", "posterior_mean_limit", "samples"))
                          if blk in post}
                     for sp in ("overdensity", "log")}
        if not det:
            res[name]["pk_ratio_delta"] = {band: round(v["pk_ratio"], 4) for band, v in post["samples"]["overdensity"].items()}
    json.dump(res, open(out, "w"), indent=1)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main(*sys.argv[1:])
