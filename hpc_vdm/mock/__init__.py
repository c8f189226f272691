"""The particle-mesh mock of CAMELS: cosmology, PM gravity, a stellar model per suite, CMD-layout maps.

``python -m hpc_vdm.mock`` runs it (see :mod:`hpc_vdm.mock.__main__`).
"""


def main(argv=None) -> int:
    from .cli import main as _main

    return _main(argv)
