"""Sweeps from a login node: a YAML of ``--set`` axes -> one run dir per point -> one submitit job array.

``spec`` parses and checks the sweep file, ``points`` expands it (names, validated configs), ``record``
keeps the folder's files (``sweep.json``, ``jobs.json``), ``submit`` builds the executor and submits,
``job`` is the picklable callable each array task runs, ``status`` derives each point's state from files
and the scheduler, ``collect`` tabulates and plots the results. ``python -m hpc_vdm.sweep`` is the command.
"""
from .job import SweepJob
from .points import Point, expand
from .spec import Resources, Spec, load_spec

__all__ = ["Point", "Resources", "Spec", "SweepJob", "expand", "load_spec"]
