"""BAOAB holds each replica's temperature and samples the Boltzmann distribution:
equipartition and Maxwell-Boltzmann velocities on a harmonic chain, the analytic
velocity memory of free particles, and the marginal of a 1-D double well."""

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from cgpipe.simulate.baoab import BAOAB
from cgpipe.units import thermal_energy

K_BOND = 1000.0  # kJ/mol/nm^2


def harmonic_chain(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Springs between consecutive beads (rest length 0) and a weak tether of bead 0:
    energies [n] and forces [n, n_beads, 3]."""
    x = x.detach().requires_grad_(True)
    bonds = x[:, 1:] - x[:, :-1]
    energy = 0.5 * K_BOND * (bonds**2).sum(dim=(1, 2)) + 0.5 * K_BOND * (x[:, 0] ** 2).sum(-1)
    (gradient,) = torch.autograd.grad(energy.sum(), x)
    return energy.detach(), -gradient


def test_each_replica_holds_its_own_temperature_with_maxwell_boltzmann_velocities():
    temperatures = torch.tensor([300.0] * 128 + [600.0] * 128, dtype=torch.float64)
    kT = thermal_energy(1.0) * temperatures
    masses = torch.tensor([12.0, 16.0, 1.0], dtype=torch.float64)
    integrator = BAOAB(
        harmonic_chain, masses, 0.002, torch.Generator().manual_seed(0), friction=5.0
    )
    state = integrator.start(torch.zeros(256, 3, 3, dtype=torch.float64), kT)
    kinetic, potential, velocities = [], [], []
    for step in range(3000):
        state = integrator.step(state)
        if step >= 500 and step % 10 == 0:
            kinetic.append(integrator.kinetic_energy(state.velocities))
            potential.append(state.energies)
            velocities.append(state.velocities)
    kinetic, potential = torch.stack(kinetic), torch.stack(potential)
    n_dof = 3 * 3
    for rows, temperature in ((slice(0, 128), 300.0), (slice(128, 256), 600.0)):
        kT_ = thermal_energy(temperature)
        # Equipartition: <KE> = <U> = n_dof kT / 2 for a harmonic system.
        assert kinetic[:, rows].mean().item() == pytest.approx(0.5 * n_dof * kT_, rel=0.02)
        assert potential[:, rows].mean().item() == pytest.approx(0.5 * n_dof * kT_, rel=0.03)
        # Each velocity component of each bead is N(0, kT/m) (Maxwell-Boltzmann).
        scaled = torch.stack(velocities)[:, rows] * torch.sqrt(masses / kT_).view(1, 1, -1, 1)
        sample = scaled[::5].reshape(-1).numpy()[::7]
        assert stats.kstest(sample, "norm").pvalue > 1e-3


def test_baoab_friction_sets_the_velocity_memory():
    # Free particles: <v(t) v(0)> / <v^2> = exp(-friction t) exactly for BAOAB's O step.
    friction, dt, steps = 2.0, 0.01, 50
    integrator = BAOAB(
        lambda x: (torch.zeros(len(x), dtype=x.dtype), torch.zeros_like(x)),
        torch.ones(1, dtype=torch.float64),
        dt,
        torch.Generator().manual_seed(2),
        friction=friction,
    )
    state = integrator.start(
        torch.zeros(20000, 1, 3, dtype=torch.float64),
        torch.full((20000,), thermal_energy(300.0), dtype=torch.float64),
    )
    v0 = state.velocities
    for _ in range(steps):
        state = integrator.step(state)
    correlation = ((state.velocities * v0).mean() / (v0**2).mean()).item()
    assert correlation == pytest.approx(np.exp(-friction * dt * steps), abs=0.02)


BARRIER = 2.0  # kT


def double_well(kT: float):
    """U(x) = BARRIER kT (x^2 - 1)^2 on the first coordinate of one bead (nm), harmonic
    in the others."""

    def energy_and_forces(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        q = x[:, 0, 0]
        energy = BARRIER * kT * (q**2 - 1) ** 2 + 0.5 * 100.0 * (x[:, 0, 1:] ** 2).sum(-1)
        forces = torch.zeros_like(x)
        forces[:, 0, 0] = -BARRIER * kT * 4 * q * (q**2 - 1)
        forces[:, 0, 1:] = -100.0 * x[:, 0, 1:]
        return energy, forces

    return energy_and_forces


def boltzmann_bins(edges: np.ndarray, kT: float) -> np.ndarray:
    """Bin probabilities of exp(-U/kT) of the double well, by quadrature."""
    weight = lambda q: np.exp(-BARRIER * (q**2 - 1) ** 2)  # noqa: E731
    total = integrate.quad(weight, -4, 4)[0]
    pieces = [integrate.quad(weight, a, b)[0] for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return np.array(pieces) / total


def sample_double_well(integrator_factory, kT: float, n_replicas=512, n_steps=4000):
    generator = torch.Generator().manual_seed(4)
    integrator = integrator_factory(double_well(kT), generator)
    start = torch.zeros(n_replicas, 1, 3, dtype=torch.float64)
    start[:, 0, 0] = torch.where(torch.arange(n_replicas) % 2 == 0, -1.0, 1.0)
    state = integrator.start(start, torch.full((n_replicas,), kT, dtype=torch.float64))
    samples = []
    for step in range(n_steps):
        state = integrator.step(state)
        if step >= 500 and step % 20 == 0:
            samples.append(state.positions[:, 0, 0].clone())
    return torch.cat(samples).numpy()


def test_the_double_well_marginal_is_boltzmann_under_baoab():
    kT = thermal_energy(300.0)
    q = sample_double_well(
        lambda f, g: BAOAB(f, torch.tensor([2.0], dtype=torch.float64), 0.005, g, friction=5.0),
        kT,
    )
    edges = np.linspace(-2.0, 2.0, 21)
    observed = np.histogram(q, edges)[0] / len(q)
    expected = boltzmann_bins(edges, kT)
    # Each bin within 0.01 of its Boltzmann probability (the statistical error of ~90 000
    # correlated samples is a few 1e-3), and the barrier's share right.
    np.testing.assert_allclose(observed, expected, atol=0.01)
    assert abs(np.mean(np.abs(q) < 0.4) - expected[8:12].sum()) < 0.01
