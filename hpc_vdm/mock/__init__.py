"""The particle-mesh mock of CAMELS: cosmology, PM gravity, FoF halos and galaxies per suite, CMD-layout files.

``python -m hpc_vdm.mock`` runs it (see :mod:`hpc_vdm.mock.cli` for the outputs and flags).

One simulation (:func:`hpc_vdm.mock.simulate.simulate`) is

1. gravity (:mod:`~hpc_vdm.mock.pm`): Gaussian ICs, 2LPT, FastPM kick-drift-kick to z = 0;
2. halos (:mod:`~hpc_vdm.mock.fof`): periodic friends-of-friends, b = 0.2, >= 20 particles;
3. galaxies (:mod:`~hpc_vdm.mock.galaxies`, :mod:`~hpc_vdm.mock.stars`): a central per halo, Poisson
   satellites, sub-threshold halos from the mass function, each resolved into star particles with the
   suite's stellar-halo relation (calibrated to CMD's pixel statistics at 128^3 and 256^3, 20 steps);
4. hydro vs N-body: the hydro run's halo dark matter is expanded about each halo's centre by a small
   feedback-dependent factor (1 + e), e = e_suite A_AGN1^0.3 A_SN1^0.15 with e_suite = 0.02 (TNG),
   0.04 (SIMBA), 0.01 (Astrid); the N-body twin is the unmodified run with the total matter mass;
5. painting (:mod:`~hpc_vdm.mock.paint`): adaptive-kernel DM maps (``mock.n_ngb`` neighbours; CMD's
   SubfindHsml kernel of 64 neighbours of 256^3 particles is n_ngb = 64 (N u / 256)^3, see
   :func:`~hpc_vdm.mock.calibration.cmd_n_ngb`), CIC star maps, optional 3D grids
   (:mod:`~hpc_vdm.mock.grids`) and the Subfind-like catalogue (:mod:`~hpc_vdm.mock.catalogue`).

Compiled kernels (:mod:`~hpc_vdm.mock.kernels`, numba) do the CIC, PM kicks, drifts and force spectra,
the upsampled DM painting and the FoF, threaded where the result cannot depend on the thread count; the
numpy code is kept as their reference (``mock.kernels=numpy``).

A TNG100-like box for dm2gal (75 Mpc/h; TNG100-1-Dark has 1820^3 particles, a cluster job) at the
size a 24 GB machine makes::

    python -m hpc_vdm.mock --sim-set CV --n-sims 1 --particles 384 --pm-steps 20 \\
        --set mock.box_mpc_h=75 --set mock.grids=[256] --set mock.nbody=true --out data/tng100
"""

