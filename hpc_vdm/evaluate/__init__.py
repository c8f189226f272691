"""Evaluation of posteriors against truths: one metrics module for validation, ``sample`` and ``spectra``.

posterior (spectral scores in k bands up to k_Nyq, in overdensity and log space; log-space z-scores),
calibration (rank-based coverage and calibration curves, z-score expectations).
"""
from .posterior import BANDS, band_edges, band_scores, draw_scores, k_nyquist, map_summary, spectra_scores, zscore_log

__all__ = ["BANDS", "band_edges", "band_scores", "draw_scores", "k_nyquist", "map_summary", "spectra_scores",
           "zscore_log"]
