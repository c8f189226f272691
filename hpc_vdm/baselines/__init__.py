"""Benchmarks dm2gal is compared with: the paper's HOD (:mod:`.hod`) and the comparison (:mod:`.compare`).

``python -m hpc_vdm.baselines``: dm2gal vs HOD vs truth on the volume's test cube (:mod:`.cli`).
"""


def main(argv=None) -> int:
    from .cli import main as cli_main

    return cli_main(argv)
