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

from . import mesh
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
    """S = IFFT(i k delta_k / k^2) of the CIC density of the particles, read back at the particles."""

    def __init__(self, shape, box):
        self.shape, self.box = shape, box
        self.cell = np.asarray(box) / np.asarray(shape)
        self.ks = mesh.wavevectors(shape, box)
        k2 = mesh.k_squared(self.ks)
        k2[(0, 0, 0)] = 1.0
        self.inv_k2 = 1.0 / k2
        self.inv_k2[(0, 0, 0)] = 0.0

    def density(self, pos: np.ndarray, terms: list | None = None) -> np.ndarray:
        """1 + delta on the mesh (one particle per cell on average)."""
        rho = mesh.cic_deposit(pos / self.cell, self.shape, terms=terms)[0]
        return rho * (np.prod(self.shape) / pos.shape[0])

    def __call__(self, pos: np.ndarray) -> np.ndarray:
        cells = pos / self.cell
        terms = mesh.stencils(cells, self.shape) if pos.shape[0] <= (1 << 22) else None
        delta_k = mesh.rfftn(self.density(pos, terms) - 1.0)
        s = np.stack([mesh.irfftn(1j * ki * delta_k * self.inv_k2, self.shape) for ki in self.ks])
        return mesh.cic_readout(s, cells, terms)  # (n, 3)


def run_pm(cosmo: Cosmology, shape, box, *, n_steps: int, a_start: float, rng: np.random.Generator) -> Particles:
    """2LPT at ``a_start``, then ``n_steps`` kick-drift-kick steps linear in a to a = 1."""
    shape = tuple(int(n) for n in shape)
    box = tuple(float(b) for b in box)
    delta_k = gaussian_field(shape, box, cosmo, rng)
    psi1, psi2 = lpt_displacements(delta_k, shape, box)
    delta_lin = mesh.irfftn(delta_k, shape)
    del delta_k

    lattice = lattice_positions(shape, box)
    psi1 = psi1.reshape(3, -1).T  # (n, 3)
    psi2 = psi2.reshape(3, -1).T
    a0 = a_start
    d1, d2 = cosmo.growth(a0), cosmo.growth2(a0)
    pos = (lattice + d1 * psi1 + d2 * psi2) % np.asarray(box)
    mom = a0**2 * cosmo.efunc(a0) * (cosmo.growth_rate(a0) * d1 * psi1 + cosmo.growth_rate2(a0) * d2 * psi2)
    del psi1, psi2, lattice

    force = _Force(shape, box)
    s = force(pos)
    a = np.linspace(a_start, 1.0, n_steps + 1)
    for a0, a1 in zip(a[:-1], a[1:]):
        ah = 0.5 * (a0 + a1)
        mom += s * ((cosmo.g_factor(ah) - cosmo.g_factor(a0)) / cosmo.growth(a0))
        pos += mom * ((cosmo.growth(a1) - cosmo.growth(a0)) / cosmo.g_factor(ah))
        pos %= np.asarray(box)
        s = force(pos)
        mom += s * ((cosmo.g_factor(a1) - cosmo.g_factor(ah)) / cosmo.growth(a1))
    return Particles(shape=shape, box=box, pos=pos, delta_lin=delta_lin, density=force.density(pos))
