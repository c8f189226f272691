"""Evaluation of posteriors against truths: one metrics module for validation, ``sample`` and ``spectra``."""
from .posterior import draw_scores, k_nyquist, map_summary, spectra_scores, zscore_log

__all__ = ["draw_scores", "k_nyquist", "map_summary", "spectra_scores", "zscore_log"]
