"""Power spectra, cross spectra and r(k) with Pylians3 conventions, over maps, stacks, mosaics and volumes.

No torch here: numpy, pyFFTW, numba and dask only. ``python -m hpc_vdm.spectra`` is the command.
"""
from .pk import (CrossSpectrum, PowerSpectrum, check_mas, cross_spectrum, cross_spectrum_stack, overdensity,
                 power_spectrum, power_spectrum_stack)

__all__ = ["PowerSpectrum", "CrossSpectrum", "power_spectrum", "cross_spectrum", "power_spectrum_stack",
           "cross_spectrum_stack", "overdensity", "check_mas"]

