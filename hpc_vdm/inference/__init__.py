"""Applying trained models to data they were not trained on: big volumes, slab by slab.

volumes (presets and the model/volume geometry checks), sources (grid, snapshot and mock inputs as
typed sources), store (the resumable tile output store), slabs (2D fused tiled sampling of slabs).
"""
