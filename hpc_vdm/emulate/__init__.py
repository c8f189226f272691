"""Parameter inference from an emulator's bound (Mudur+23), calibrated: ``python -m hpc_vdm.infer``.

grid (the bound's terms on a parameter grid with common random numbers; boxes; the parameters a model is
given), posterior (grid posteriors: −2Δln L, contours, marginals, intervals, HPD levels), mcmc (NUTS on the
differentiable bound with the noise held fixed), calibration (coverage, TARP), baseline (parameters from
P(k) with a Gaussian likelihood, covariance from a CV set), front and units (the command's plan, store and
units of work for :func:`hpc_vdm.inference.apply.apply`), report (OUT.json and the figure).
"""
