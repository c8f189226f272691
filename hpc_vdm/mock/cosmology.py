"""Background cosmology for the mock: linear P(k), growth D(a) and the FastPM time factors.

The linear power spectrum (Eisenstein & Hu 1998 without wiggles, normalised to sigma_8) and the
linear growth factor come from colossus, a maintained pure-Python library; this module only adds the
FastPM factors G(a) = a^3 E(a) dD/da and the second-order growth D2(a) of 2LPT.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from colossus.cosmology import cosmology as _colossus

from ..data import camels


@dataclass(frozen=True)
class Cosmology:
    """Flat LCDM at the CAMELS point (Omega_m, sigma_8); all else fixed to CAMELS' values."""

    omega_m: float
    sigma_8: float

    def __post_init__(self):
        if not 0.0 < self.omega_m - camels.OMEGA_B < 1.0:
            raise ValueError(f"Omega_m must exceed Omega_b={camels.OMEGA_B} and be < 1, got {self.omega_m}")
        if not self.sigma_8 > 0:
            raise ValueError(f"sigma_8 must be positive, got {self.sigma_8}")
        cosmo = _colossus.Cosmology(
            name=f"camels_{self.omega_m:.6f}_{self.sigma_8:.6f}", flat=True, H0=100 * camels.H,
            Om0=self.omega_m, Ob0=camels.OMEGA_B, sigma8=self.sigma_8, ns=camels.N_S,
            relspecies=False, persistence="", print_warnings=False)
        object.__setattr__(self, "_c", cosmo)

    # --- linear theory --------------------------------------------------------------------
    def linear_power(self, k_h_mpc: np.ndarray) -> np.ndarray:
        """Linear matter P(k) at z=0 [(Mpc/h)^3] for k [h/Mpc] > 0 (EH98 no-wiggle, sigma_8-normalised)."""
        return self._c.matterPowerSpectrum(np.asarray(k_h_mpc, dtype=np.float64), 0.0, model="eisenstein98_zb")

    def growth(self, a: float) -> float:
        """Linear growth D(a), D(1) = 1."""
        return float(self._c.growthFactor(1.0 / a - 1.0))

    def dgrowth_da(self, a: float) -> float:
        """dD/da = -(1/a^2) dD/dz."""
        return float(-self._c.growthFactor(1.0 / a - 1.0, derivative=1) / a**2)

    def efunc(self, a: float) -> float:
        """E(a) = H(a)/H0."""
        return float(self._c.Ez(1.0 / a - 1.0))

    def omega_m_a(self, a: float) -> float:
        return float(self._c.Om(1.0 / a - 1.0))

    def growth_rate(self, a: float) -> float:
        """f = dln D / dln a."""
        return a * self.dgrowth_da(a) / self.growth(a)

    def halo_mass_function(self, m_msun_h: np.ndarray, model: str = "watson13", mdef: str = "fof") -> np.ndarray:
        """dn/dln M [(h/Mpc)^3] at z = 0 from colossus (default: Watson et al. 2013, FoF b = 0.2 masses)."""
        from colossus.lss import mass_function

        _colossus.setCurrent(self._c)
        return mass_function.massFunction(np.asarray(m_msun_h, dtype=np.float64), 0.0, mdef=mdef, model=model,
                                          q_out="dndlnM")

    # --- FastPM and 2LPT factors ------------------------------------------------------------
    def g_factor(self, a: float) -> float:
        """G(a) = a^3 E(a) dD/da: p = G Psi in linear theory, so kicks and drifts are exact at any step."""
        return a**3 * self.efunc(a) * self.dgrowth_da(a)

    def growth2(self, a: float) -> float:
        """Second-order growth D2 = -3/7 D^2 Omega_m(a)^(-1/143)."""
        return -3.0 / 7.0 * self.growth(a) ** 2 * self.omega_m_a(a) ** (-1.0 / 143.0)

    def growth_rate2(self, a: float) -> float:
        """f2 = dln D2 / dln a ~= 2 Omega_m(a)^(6/11)."""
        return 2.0 * self.omega_m_a(a) ** (6.0 / 11.0)
