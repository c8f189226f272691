"""Evaluation of a trained map model's draws against held-out truths: ``python -m hpc_vdm.evaluate``.

analysis (the numbers of a report: spectra in k bands, calibration, χ²_r), calibration (rank-based
coverage and z-score expectations), posterior (per-map summaries, log-space z-scores), panels (1P, other
suites, a tiled slab), significance (standard errors of map means over simulations, paired leads between
rows), report (the papers' Fig. 1 and Fig. 2 — drawn here only — calibration curves,
summary.md), cli (the command). The spectral scores themselves are :mod:`hpc_vdm.spectra.scores`.
"""
from .posterior import map_summary, zscore_log

__all__ = ["map_summary", "zscore_log"]
