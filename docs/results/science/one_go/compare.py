"""The headline numbers of two science reports side by side (the one-command `make science` run against the
stage-by-stage rerun): python docs/results/science/one_go/compare.py A/metrics.json B/metrics.json [--out F.json]."""
import argparse
import json

BANDS = ("k<kN/4", "kN/4-kN/2", "kN/2-kN")


def headline(path: str) -> dict:
    p = json.load(open(path))["posterior"]
    out = {}
    for space in ("overdensity", "log"):
        rows = {"posterior mean r (the draws' mean)": (p["posterior_mean"], "r"),
                "posterior mean r, S -> inf": (p.get("posterior_mean_limit"), "r"),   # absent in older reports
                "one sample r": (p["samples"], "r"),
                "samples' P ratio": (p["samples"], "pk_ratio"),
                "calibrated P ratio": (p.get("samples_if_calibrated"), "pk_ratio"),
                "stellar map r": (p["condition"], "r"),
                "regressor r": (p.get("baselines", {}).get("regressor"), "r")}
        for name, (block, key) in rows.items():
            if block is not None:
                out[f"{space}: {name}"] = [round(block[space][b][key], 4) for b in BANDS]
    level = p["calibration"]["map_mean_level"]["coverage"]
    out["map mean level: 68% / 95% coverage"] = [round(c["observed"], 3) for c in level]
    out["map mean level: bias, rms, spread (dex)"] = [round(v, 4) for v in p["map_level_offsets_dex"].values()]
    pix = p["calibration"]["pixel"]["coverage"]
    out["pixel: 68% / 95% coverage"] = [round(c["observed"], 4) for c in pix]
    out["pixel z-std (expected)"] = [round(p["zscore_log_pixel"]["std"], 4),
                                     round(p["zscore_log_pixel"]["expected_std"], 4)]
    return out


def fmt(values) -> str:
    return " / ".join(f"{x:.3f}" for x in values) if values is not None else "–"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--out")
    args = ap.parse_args()
    a, b = headline(args.a), headline(args.b)
    print(f"| | {args.a} | {args.b} |\n| --- | --- | --- |")
    for key in a | b:
        print(f"| {key} | {fmt(a.get(key))} | {fmt(b.get(key))} |")
    if args.out:
        json.dump({"a": {"path": args.a, **a}, "b": {"path": args.b, **b}}, open(args.out, "w"), indent=1)


if __name__ == "__main__":
    main()
