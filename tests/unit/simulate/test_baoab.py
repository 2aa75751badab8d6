"""BAOAB holds the set temperature and samples the Boltzmann distribution."""

import numpy as np
import pytest
import torch

from cgpipe.simulate.baoab import BAOAB
from cgpipe.units import thermal_energy


def test_baoab_holds_the_temperature_of_a_harmonic_system():
    temperature, k = 300.0, 1000.0  # K, kJ/mol/nm^2
    kT = thermal_energy(temperature)
    masses = torch.tensor([12.0, 16.0, 1.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    integrator = BAOAB(
        lambda x: -k * x, masses, temperature, timestep=0.002, generator=generator, friction=5.0
    )
    x = torch.zeros(256, 3, 3, dtype=torch.float64)
    v = integrator.initial_velocities(x)
    f = -k * x
    kinetic, squared = [], []
    for step in range(3000):
        x, v, f = integrator.step(x, v, f)
        if step >= 500 and step % 10 == 0:
            kinetic.append(integrator.kinetic_energy(v).mean().item())
            squared.append((x**2).mean().item())
    n_dof = 3 * 3
    # Equipartition: <KE> = n_dof kT / 2 and <x^2> = kT / k per component.
    assert np.mean(kinetic) == pytest.approx(0.5 * n_dof * kT, rel=0.02)
    assert np.mean(squared) == pytest.approx(kT / k, rel=0.02)


def test_baoab_friction_sets_the_velocity_memory():
    # Free particles: <v(t) v(0)> / <v^2> = exp(-friction t) exactly for BAOAB's O step.
    friction, dt, steps = 2.0, 0.01, 50
    masses = torch.ones(1, dtype=torch.float64)
    integrator = BAOAB(
        lambda x: torch.zeros_like(x),
        masses,
        300.0,
        dt,
        torch.Generator().manual_seed(2),
        friction=friction,
    )
    x = torch.zeros(20000, 1, 3, dtype=torch.float64)
    v0 = integrator.initial_velocities(x)
    v, f = v0, torch.zeros_like(x)
    for _ in range(steps):
        x, v, f = integrator.step(x, v, f)
    correlation = ((v * v0).mean() / (v0**2).mean()).item()
    assert correlation == pytest.approx(np.exp(-friction * dt * steps), abs=0.02)


def test_inactive_replicas_are_frozen():
    integrator = BAOAB(
        lambda x: -x, torch.ones(2), 300.0, 0.002, torch.Generator().manual_seed(1), friction=1.0
    )
    x = torch.randn(3, 2, 3)
    v = torch.randn(3, 2, 3)
    active = torch.tensor([True, False, True])
    x2, v2, _ = integrator.step(x, v, -x, active)
    assert torch.equal(x2[1], x[1]) and torch.equal(v2[1], v[1])
    assert not torch.equal(x2[0], x[0])
