"""Langevin dynamics by the BAOAB splitting (Leimkuhler & Matthews 2013), which samples
configurations with small time-step bias."""

from __future__ import annotations

import dataclasses
import math

import torch

from cgpipe.simulate.base import INTEGRATORS, EnergyAndForces, Integrator, State


@INTEGRATORS.register("baoab")
class BAOAB(Integrator):
    """BAOAB splitting of underdamped Langevin dynamics.

    B: v += dt/2 F/m;  A: x += dt/2 v;  O: v = c1 v + c2 sqrt(kT/m) xi;  A;  B,
    with c1 = exp(-friction dt) and c2 = sqrt(1 - c1^2), kT each replica's own.

    Parameters
    ----------
    energy_and_forces, masses, timestep, generator
        As for :class:`~cgpipe.simulate.base.Integrator` (kJ/mol, kJ/mol/nm, amu, ps).
    friction
        Langevin friction coefficient in 1/ps (config ``simulate.baoab.friction``).
    """

    def __init__(
        self,
        energy_and_forces: EnergyAndForces,
        masses: torch.Tensor,
        timestep: float,
        generator: torch.Generator | None = None,
        *,
        friction: float,
    ) -> None:
        super().__init__(energy_and_forces, masses, timestep, generator)
        self.friction = friction
        self.c1 = math.exp(-friction * timestep)
        self.c2_over_sqrt_mass = torch.sqrt((1.0 - self.c1**2) * self.inverse_mass)

    def step(self, state: State) -> State:
        """One step; each step costs one energy-and-forces evaluation and draws one normal
        variate per degree of freedom of every replica the batch started with."""
        dt = self.timestep
        half_kick = 0.5 * dt * self.inverse_mass
        v = state.velocities + half_kick * state.forces
        x = state.positions + 0.5 * dt * v
        sqrt_kT = torch.sqrt(self.thermal(state.kT))
        v = self.c1 * v + self.c2_over_sqrt_mass * sqrt_kT * self.normal(state)
        x = x + 0.5 * dt * v
        energies, forces = self.energy_and_forces(x)
        v = v + half_kick * forces
        return dataclasses.replace(
            state, positions=x, velocities=v, forces=forces, energies=energies
        )
