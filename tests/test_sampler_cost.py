"""tools/sampler_cost.py's rule for the default sampler: the cheapest setting within 2% of the reference in every
compared number (samples' P ratio and r(k), both spaces, bands up to k_Nyq/2), the small-scale band not compared."""
import sys

from helpers import REPO

sys.path.insert(0, str(REPO / "tools"))
from sampler_cost import cheapest_within  # noqa: E402

BANDS = ("k<kN/4", "kN/4-kN/2", "kN/2-kN")


def row(nfe, pk=1.0, r=0.8, small_scale=1.0, mean_r=0.9):
    numbers = {}
    for space in ("overdensity", "log"):
        for band in BANDS:
            far = band == "kN/2-kN"
            numbers[f"samples/{space}/{band}/pk_ratio"] = small_scale if far else pk
            numbers[f"samples/{space}/{band}/r"] = r
            numbers[f"posterior_mean/{space}/{band}/r"] = mean_r
    return {"nfe": nfe, "numbers": numbers}


def test_the_cheapest_setting_within_two_percent_of_the_reference_in_every_compared_number():
    rows = {"unipc:16": row(16, pk=1.03), "unipc:24": row(24, pk=1.019), "dpm2m_sde:64": row(64, pk=1.0),
            "ancestral:250": row(250)}
    assert cheapest_within(rows, "ancestral:250") == "unipc:24"
    # neither the small-scale band nor the posterior mean is compared
    rows["unipc:16"] = row(16, small_scale=1.5, mean_r=0.5)
    assert cheapest_within(rows, "ancestral:250") == "unipc:16"
    # one number 3% off (a single sample's r) rules a setting out
    rows["unipc:16"]["numbers"]["samples/log/kN/4-kN/2/r"] = 0.8 * 0.97
    assert cheapest_within(rows, "ancestral:250") == "unipc:24"
    assert cheapest_within(rows, "ancestral:250", tol=0.01) == "dpm2m_sde:64"


def test_the_reference_itself_when_no_cheaper_setting_agrees():
    rows = {"unipc:24": row(24, r=0.75), "ancestral:250": row(250)}
    assert cheapest_within(rows, "ancestral:250") == "ancestral:250"
