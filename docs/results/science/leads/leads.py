"""The posterior mean's paired lead (its S → ∞ limit's and the S draws' mean's) over each baseline, per band and space, ± its standard error over the
simulations (hpc_vdm.evaluate.significance), and the coverages ± theirs, from evaluate's metrics.json files
(their per-map r(k), ``r_maps``). Writes leads.json and prints the Markdown tables of the README.

    python docs/results/science/leads/leads.py test=docs/results/science/metrics.json \
        new=docs/results/science/leads/independent/metrics.json --out docs/results/science/leads/leads.json
"""
import argparse
import json

from hpc_vdm.data.dataset import read_attrs
from hpc_vdm.evaluate.significance import Z_AHEAD, lead
from hpc_vdm.spectra.scores import BANDS

MEANS = {"S → ∞": "posterior_mean_limit", "S draws": "posterior_mean"}
OTHERS = {"the stellar map": "condition", "the regressor": ("baselines", "regressor")}


def row(p: dict, key):
    return p[key[0]][key[1]] if isinstance(key, tuple) else p[key]


def leads_of(path: str) -> dict:
    m = json.load(open(path))
    p, per_sim = m["posterior"], read_attrs(m["store"])["maps_per_sim"]
    sims = [i // per_sim for i in m["maps"]]
    out = {"n_maps": len(sims), "n_sims": len(set(sims)), "leads": {}, "coverage": {}}
    others = {name: key for name, key in OTHERS.items() if key == "condition" or key[1] in p["baselines"]}
    for mean, mkey in MEANS.items():
        out["leads"][mean] = {name: {space: {b: lead(p[mkey][space][b]["r_maps"], row(p, key)[space][b]["r_maps"], sims)
                                             for b in BANDS} for space in ("overdensity", "log")}
                              for name, key in others.items()}
    for q, c in p["calibration"].items():
        out["coverage"][q] = [{k: x[k] for k in ("observed", "observed_se", "expected")} for x in c["coverage"]]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="+", help="name=metrics.json")
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    res = {name: leads_of(path) for name, path in (s.split("=", 1) for s in a.sets)}
    json.dump(res, open(a.out, "w"), indent=1)
    names = list(res)
    print("| posterior mean minus | space | " + " | ".join(
        f"{b}, {n} ({res[n]['n_sims']} sims)" for n in names for b in BANDS[:2]) + " |")
    print("| --- | --- |" + " --- |" * (2 * len(names)))
    for mean in MEANS:
        for other in OTHERS:
            for space in ("overdensity", "log"):
                cells = []
                for n in names:
                    for b in BANDS[:2]:
                        x = res[n]["leads"][mean].get(other, {}).get(space, {}).get(b)
                        if x is None:
                            cells.append("–")
                            continue
                        mark = "**" if x["ahead"] else ""
                        cells.append(f"{mark}{x['lead']:+.3f} ± {x['lead_se']:.3f}{mark} "
                                     f"({x['lead'] / x['lead_se']:+.1f})")
                print(f"| {mean}: {other} | {space} | " + " | ".join(cells) + " |")
    print(f"\n(bold: ahead, beyond {Z_AHEAD:g} standard errors; in brackets the lead in standard errors)\n")
    print("| coverage: observed ± se / expected | " + " | ".join(f"{n}: 68%, 95%" for n in names) + " |")
    print("| --- |" + " --- |" * len(names))
    for q in res[names[0]]["coverage"]:
        cells = [", ".join(f"{c['observed']:.3f} ± {c['observed_se']:.3f} / {c['expected']:.3f}"
                           for c in res[n]["coverage"][q]) for n in names]
        print(f"| {q} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
