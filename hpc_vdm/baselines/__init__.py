"""Benchmarks dm2gal is compared with: the paper's HOD (:mod:`.hod`) and the comparison (:mod:`.compare`).

``python -m hpc_vdm.baselines``: dm2gal vs HOD vs truth on the volume's test cube (:mod:`.cli`).
"""

