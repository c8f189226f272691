"""Gaussian initial conditions, 2LPT and a FastPM-style particle-mesh run to z = 0.

Units: positions in Mpc/h, H0 = 1. Equations of motion dx/da = p / (a^3 E), dp/da = -grad(phi) / (a E)
with laplacian(phi) = 1.5 Omega_m delta / a. FastPM (Feng et al. 2016) kick and drift factors

    kick   dp = S * [G(a1) - G(a0)] / D(a_force),   S = IFFT(i k delta_k / k^2)
    drift  dx = p * [D(a1) - D(a0)] / G(a_momentum)

reproduce linear growth exactly at any step size. The mesh is the particle grid (one particle per cell
at the start); boxes may be rectangular (thin-slab boxes for large mosaics).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import kernels, mesh
from .cosmology import Cosmology


def lattice_positions(shape, box) -> np.ndarray:
    """(n, 3) Lagrangian positions q [Mpc/h] of one particle per mesh node, C order."""
    return np.indices(shape, dtype=np.float64).reshape(3, -1).T * (np.asarray(box) / np.asarray(shape))


@dataclass
class Particles:
    """A PM run's result. Arrays are over the Lagrangian lattice, flattened in C order."""

    shape: tuple[int, int, int]     # particles per axis (= mesh cells per axis)
    box: tuple[float, float, float]  # Mpc/h
    pos: np.ndarray                  # (n, 3) final positions [Mpc/h], in [0, box)
    delta_lin: np.ndarray            # shape, linear overdensity at z=0 on the lattice
    density: np.ndarray              # shape, final CIC overdensity 1 + delta on the mesh

    @property
    def cell(self) -> np.ndarray:
        return np.asarray(self.box) / np.asarray(self.shape)

    def lattice(self) -> np.ndarray:
        """(n, 3) Lagrangian positions q [Mpc/h] (mesh nodes)."""
        return lattice_positions(self.shape, self.box)

    def displacement(self) -> np.ndarray:
        """(3, *shape) final displacement x - q [Mpc/h], unwrapped to (-box/2, box/2]."""
        box = np.asarray(self.box)
        d = (self.pos - self.lattice() + box / 2) % box - box / 2
        return d.T.reshape(3, *self.shape)


def gaussian_field(shape, box, cosmo: Cosmology, rng: np.random.Generator) -> np.ndarray:
    """Fourier modes delta_k of a Gaussian field with the linear P(k) at z=0: white noise * sqrt(P/V_cell)."""
    white = rng.standard_normal(shape)
    ks = mesh.wavevectors(shape, box)
    k = np.sqrt(mesh.k_squared(ks))
    v_cell = np.prod(box) / np.prod(shape)
    amp = np.zeros_like(k)
    amp[k > 0] = np.sqrt(cosmo.linear_power(k[k > 0]) / v_cell)
    return mesh.rfftn(white) * amp


def lpt_displacements(delta_k: np.ndarray, shape, box) -> tuple[np.ndarray, np.ndarray]:
    """First- and second-order Lagrangian displacements (3, *shape) at D1 = 1 (13 FFTs).

    phi_k = delta_k / k^2;  psi1 = IFFT(i k phi_k);  delta2 = sum_{i<j} phi_ii phi_jj - phi_ij^2;
    psi2' = IFFT(-i k FFT(delta2) / k^2), so that x = q + D1 psi1 + D2 psi2'.
    """
    ks = mesh.wavevectors(shape, box)
    k2 = mesh.k_squared(ks)
    k2[(0,) * len(shape)] = 1.0
    phi_k = delta_k / k2
    psi1 = np.stack([mesh.irfftn(1j * ki * phi_k, shape) for ki in ks])
    phi_ij = {(i, j): mesh.irfftn(ks[i] * ks[j] * phi_k, shape) for i in range(3) for j in range(i, 3)}
    delta2 = np.zeros(shape)
    for i in range(3):
        for j in range(i + 1, 3):
            delta2 += phi_ij[i, i] * phi_ij[j, j] - phi_ij[i, j] ** 2
    del phi_ij
    d2_k = mesh.rfftn(delta2)
    d2_k[(0,) * len(shape)] = 0.0
    psi2 = np.stack([mesh.irfftn(-1j * ki * d2_k / k2, shape) for ki in ks])
    return psi1, psi2


class _Force:
    """S = IFFT(i k delta_k / k^2) of the CIC density of the particles (single-precision FFTs).

    The mesh-sized work arrays are allocated once and reused every step (a fresh 16-128 MB array per
    step costs its page faults inside the deposit); :meth:`field` returns the same buffer each call."""

    def __init__(self, shape, box):
        self.shape, self.box = shape, box
        self.cell = np.asarray(box) / np.asarray(shape)
        self.ks = [k.astype(np.float32) for k in mesh.wavevectors(shape, box)]
        k2 = mesh.k_squared(mesh.wavevectors(shape, box))
        k2[(0, 0, 0)] = 1.0
        self.inv_k2 = (1.0 / k2).astype(np.float32)
        self.inv_k2[(0, 0, 0)] = 0.0
        self._rho = np.zeros(shape)                                 # float64 deposit
        self._delta = np.zeros(shape, dtype=np.float32)             # FFT input
        self._grid = np.zeros((*shape, 3), dtype=np.float32)        # S, components interleaved
        self._spectra = None                                        # (3, *rfft shape) complex64, compiled path

    def density(self, pos: np.ndarray) -> np.ndarray:
        """1 + delta on the mesh (one particle per cell on average), a new array."""
        return self._deposit(pos).copy()

    def _deposit(self, pos: np.ndarray) -> np.ndarray:
        """1 + delta of pos (n, 3) in the reused buffer."""
        rho = self._rho
        if kernels.compiled():  # positions scaled inside the kernel: no (n, 3) temporary
            rho.fill(0.0)
            kernels.deposit_3d(pos, kernels.EMPTY_F, 1.0, rho, 1.0 / self.cell)
        else:
            rho[...] = mesh.cic_deposit(pos / self.cell, self.shape)[0]
        rho *= np.prod(self.shape) / pos.shape[0]
        return rho

    def field(self, pos: np.ndarray) -> np.ndarray:
        """The force grid S (*shape, 3) float32 of particles at pos (n, 3), components interleaved
        (the reused buffer: valid until the next call)."""
        np.subtract(self._deposit(pos), 1.0, out=self._delta, casting="same_kind")
        delta_k = mesh.rfftn(self._delta)
        if kernels.compiled():
            if self._spectra is None:
                self._spectra = np.zeros((3, *self.inv_k2.shape), dtype=np.complex64)
            spectra = self._spectra
            kernels.gradient_spectra(delta_k, self.inv_k2, *(k.ravel() for k in self.ks), spectra)
        else:
            spectra = [1j * ki * (delta_k * self.inv_k2) for ki in self.ks]
        for c in range(3):
            self._grid[..., c] = mesh.irfftn(spectra[c], self.shape)
        return self._grid

    def __call__(self, pos: np.ndarray) -> np.ndarray:
        """S read back at the particles (n, 3)."""
        return mesh.cic_readout(np.moveaxis(self.field(pos), -1, 0), pos / self.cell)


def _kick(mom, s_grid, pos, inv_cell, factor) -> None:
    """mom += factor * S(pos) for the force grid (*shape, 3)."""
    if kernels.compiled():
        kernels.kick(mom, s_grid, pos, inv_cell, factor)
    else:
        mom += factor * mesh.cic_readout(np.moveaxis(s_grid, -1, 0), pos * inv_cell)


def _drift(pos, mom, factor, box) -> None:
    if kernels.compiled():
        kernels.drift(pos, mom, factor, box)
    else:
        pos += factor * mom
        pos -= np.floor(pos / box) * box
        pos[pos >= box] = 0.0


def run_pm(cosmo: Cosmology, shape, box, *, n_steps: int, a_start: float, rng: np.random.Generator) -> Particles:
    """2LPT at ``a_start``, then ``n_steps`` kick-drift-kick steps linear in a to a = 1."""
    shape = tuple(int(n) for n in shape)
    box = tuple(float(b) for b in box)
    delta_k = gaussian_field(shape, box, cosmo, rng)
    psi1, psi2 = lpt_displacements(delta_k, shape, box)
    delta_lin = mesh.irfftn(delta_k, shape)
    del delta_k

    box_arr = np.asarray(box)
    a0 = a_start
    d1, d2 = cosmo.growth(a0), cosmo.growth2(a0)
    f1, f2 = cosmo.growth_rate(a0) * d1, cosmo.growth_rate2(a0) * d2
    psi1 = psi1.reshape(3, -1).T  # (n, 3)
    psi2 = psi2.reshape(3, -1).T
    mom = (a0**2 * cosmo.efunc(a0)) * (f1 * psi1 + f2 * psi2)
    pos = lattice_positions(shape, box)
    pos += d1 * psi1 + d2 * psi2
    del psi1, psi2
    _drift(pos, mom, 0.0, box_arr)  # wrap into the box

    force = _Force(shape, box)
    inv_cell = 1.0 / force.cell
    s_grid = force.field(pos)
    a = np.linspace(a_start, 1.0, n_steps + 1)
    # kick-drift-kick; the closing kick of a step and the opening kick of the next share one force
    # evaluation, so they are applied as one kick with the summed factor
    pending = 0.0
    for a0, a1 in zip(a[:-1], a[1:]):
        ah = 0.5 * (a0 + a1)
        _kick(mom, s_grid, pos, inv_cell, pending + (cosmo.g_factor(ah) - cosmo.g_factor(a0)) / cosmo.growth(a0))
        _drift(pos, mom, (cosmo.growth(a1) - cosmo.growth(a0)) / cosmo.g_factor(ah), box_arr)
        s_grid = force.field(pos)
        pending = (cosmo.g_factor(a1) - cosmo.g_factor(ah)) / cosmo.growth(a1)
    _kick(mom, s_grid, pos, inv_cell, pending)
    del s_grid, mom
    return Particles(shape=shape, box=box, pos=pos, delta_lin=delta_lin, density=force.density(pos))
