"""Langevin dynamics by the BAOAB splitting (Leimkuhler & Matthews 2013), which samples
configurations with small time-step bias."""

from __future__ import annotations

import math

import torch

from cgpipe.simulate.base import INTEGRATORS, ForceFunction, Integrator


@INTEGRATORS.register("baoab")
class BAOAB(Integrator):
    """BAOAB splitting of underdamped Langevin dynamics.

    B: v += dt/2 F/m;  A: x += dt/2 v;  O: v = c1 v + c2 sqrt(kT/m) xi;  A;  B,
    with c1 = exp(-friction dt) and c2 = sqrt(1 - c1^2).

    Parameters
    ----------
    forces, masses, temperature, timestep, generator
        As for :class:`~cgpipe.simulate.base.Integrator` (kJ/mol/nm, amu, K, ps).
    friction
        Langevin friction coefficient in 1/ps (config ``simulate.baoab.friction``).
    """

    def __init__(
        self,
        forces: ForceFunction,
        masses: torch.Tensor,
        temperature: float,
        timestep: float,
        generator: torch.Generator | None = None,
        *,
        friction: float,
    ) -> None:
        super().__init__(forces, masses, temperature, timestep, generator)
        self.friction = friction
        self.c1 = math.exp(-friction * timestep)
        self.noise_scale = torch.sqrt((1.0 - self.c1**2) * self.kT * self.inverse_mass)

    def step(
        self,
        positions: torch.Tensor,
        velocities: torch.Tensor,
        forces: torch.Tensor,
        active: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step; returns new (positions, velocities, forces).

        ``forces`` are those at ``positions`` (from the previous step), so each step
        costs one force evaluation and draws one normal variate per degree of freedom.
        Replicas where ``active`` [n_replicas] is False keep their state.
        """
        dt = self.timestep
        v = velocities + 0.5 * dt * forces * self.inverse_mass
        x = positions + 0.5 * dt * v
        noise = torch.randn(x.shape, generator=self.generator, device=x.device, dtype=x.dtype)
        v = self.c1 * v + self.noise_scale * noise
        x = x + 0.5 * dt * v
        f = self.forces(x)
        v = v + 0.5 * dt * f * self.inverse_mass
        if active is not None:
            keep = active.view(-1, 1, 1)
            x = torch.where(keep, x, positions)
            v = torch.where(keep, v, velocities)
            f = torch.where(keep, f, forces)
        return x, v, f
