"""hpc_vdm: conditional variational diffusion models that turn stellar-mass maps into dark-matter maps.

Every command is ``python -m hpc_vdm.<command>``; ``python -m hpc_vdm`` lists them.
"""
__version__ = "0.1.0"
