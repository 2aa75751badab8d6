"""The BAOAB Langevin integrator on batched positions [n_replicas, n_beads, 3]."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from cgpipe.units import thermal_energy

ForceFunction = Callable[[torch.Tensor], torch.Tensor]


class BAOAB:
    """BAOAB splitting of underdamped Langevin dynamics.

    B: v += dt/2 F/m;  A: x += dt/2 v;  O: v = c1 v + c2 sqrt(kT/m) xi;  A;  B.

    Parameters
    ----------
    forces
        Maps positions [n_replicas, n_beads, 3] (nm) to forces of the same shape (kJ/mol/nm).
    masses
        [n_beads] in amu.
    temperature
        K.
    timestep
        ps.
    friction
        1/ps.
    generator
        Torch random generator on the positions' device (for reproducible noise).
    """

    def __init__(
        self,
        forces: ForceFunction,
        masses: torch.Tensor,
        temperature: float,
        timestep: float,
        friction: float,
        generator: torch.Generator | None = None,
    ) -> None:
        self.forces = forces
        self.timestep = timestep
        self.kT = thermal_energy(temperature)
        self.inverse_mass = (1.0 / masses).view(1, -1, 1)
        self.c1 = math.exp(-friction * timestep)
        self.noise_scale = torch.sqrt((1.0 - self.c1**2) * self.kT * self.inverse_mass)
        self.generator = generator

    def initial_velocities(self, positions: torch.Tensor) -> torch.Tensor:
        """Maxwell-Boltzmann velocities (nm/ps) at the integrator's temperature."""
        noise = torch.randn(
            positions.shape,
            generator=self.generator,
            device=positions.device,
            dtype=positions.dtype,
        )
        return noise * torch.sqrt(self.kT * self.inverse_mass)

    def step(
        self,
        positions: torch.Tensor,
        velocities: torch.Tensor,
        forces: torch.Tensor,
        active: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step; returns new (positions, velocities, forces).

        ``forces`` are those at ``positions`` (from the previous step), so each step
        costs one force evaluation. Replicas where ``active`` [n_replicas] is False keep
        their state.
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

    def kinetic_energy(self, velocities: torch.Tensor) -> torch.Tensor:
        """[n_replicas] kinetic energies in kJ/mol."""
        return 0.5 * (velocities**2 / self.inverse_mass).sum(dim=(1, 2))
