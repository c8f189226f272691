"""Data: the CAMELS CMD layout, the Zarr maps store, transforms and the training dataset."""
