"""BAOAB holds the set temperature and samples the Boltzmann distribution."""

import numpy as np
import pytest
import torch

from cgpipe.simulate import BAOAB
from cgpipe.simulate.run import replica_health
from cgpipe.units import thermal_energy


def test_baoab_holds_the_temperature_of_a_harmonic_system():
    temperature, k = 300.0, 1000.0  # K, kJ/mol/nm^2
    kT = thermal_energy(temperature)
    masses = torch.tensor([12.0, 16.0, 1.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    integrator = BAOAB(
        lambda x: -k * x, masses, temperature, timestep=0.002, friction=5.0, generator=generator
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


def test_inactive_replicas_are_frozen():
    integrator = BAOAB(
        lambda x: -x, torch.ones(2), 300.0, 0.002, 1.0, torch.Generator().manual_seed(1)
    )
    x = torch.randn(3, 2, 3)
    v = torch.randn(3, 2, 3)
    active = torch.tensor([True, False, True])
    x2, v2, _ = integrator.step(x, v, -x, active)
    assert torch.equal(x2[1], x[1]) and torch.equal(v2[1], v[1])
    assert not torch.equal(x2[0], x[0])


def test_health_flags_nan_collision_and_bond_stretch():
    x = torch.tensor(
        [
            [[0.0, 0, 0], [0.15, 0, 0], [0.3, 0, 0]],  # healthy
            [[0.0, 0, 0], [float("nan"), 0, 0], [0.3, 0, 0]],  # NaN
            [[0.0, 0, 0], [0.15, 0, 0], [0.2, 0, 0]],  # beads 1 and 2 collide (0.05 nm)
            [[0.0, 0, 0], [0.15, 0, 0], [0.6, 0, 0]],  # bond 1-2 stretched to 0.45 nm
        ]
    )
    bonds = torch.tensor([[0, 1], [1, 2]])
    healthy, reasons = replica_health(x, bonds, torch.tensor([0.3, 0.3]), min_distance=0.1)
    assert healthy.tolist() == [True, False, False, False]
    assert reasons == ["", "nan", "collision", "bond_stretch"]
