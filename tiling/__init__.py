"""Model-agnostic periodic tiling of 2D/3D fields (tile grids, wrap-around gather/scatter, blending).

This package never imports ``hpc_vdm``; numpy first, torch duck-typed.
"""
