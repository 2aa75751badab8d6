"""The integrator interface and its registry.

An integrator advances a batch of replicas of one CG system under a force field at a
fixed temperature. Positions, velocities and forces are tensors
[n_replicas, n_beads, 3] in nm, nm/ps and kJ/mol/nm; masses are [n_beads] in amu, so
that F/m is in nm/ps^2 and kinetic energies are in kJ/mol.

A new integrator is one module of this package::

    @INTEGRATORS.register("my_method")
    class MyMethod(Integrator):
        def __init__(self, forces, masses, temperature, timestep, generator=None, *, option):
            super().__init__(forces, masses, temperature, timestep, generator)
            ...

        def step(self, positions, velocities, forces, active=None): ...

plus its section ``simulate.my_method`` in the config schema, whose keys are the
keyword-only options of its constructor.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import ClassVar

import torch

from cgpipe.registry import Registry
from cgpipe.units import thermal_energy

ForceFunction = Callable[[torch.Tensor], torch.Tensor]
"""Maps positions [n_replicas, n_beads, 3] (nm) to forces of the same shape (kJ/mol/nm)."""


class Integrator(abc.ABC):
    """Batched dynamics of ``n_replicas`` copies of one CG system.

    Parameters
    ----------
    forces
        Maps positions [n_replicas, n_beads, 3] (nm) to forces of the same shape
        (kJ/mol/nm).
    masses
        [n_beads] bead masses in amu.
    temperature
        Temperature in K.
    timestep
        Time step in ps.
    generator
        Torch random generator on the positions' device (reproducible noise), or
        ``None`` for torch's global one.
    **section
        A subclass takes the keys of its config section ``simulate.<name>`` as
        keyword-only arguments.

    Attributes
    ----------
    kT
        Thermal energy in kJ/mol.
    inverse_mass
        [1, n_beads, 1] inverse masses in 1/amu, broadcasting over positions.
    """

    name: ClassVar[str]

    def __init__(
        self,
        forces: ForceFunction,
        masses: torch.Tensor,
        temperature: float,
        timestep: float,
        generator: torch.Generator | None = None,
    ) -> None:
        if masses.ndim != 1:
            raise ValueError(f"masses have shape {tuple(masses.shape)}, expected [n_beads]")
        self.forces = forces
        self.masses = masses
        self.temperature = temperature
        self.timestep = timestep
        self.generator = generator
        self.kT = thermal_energy(temperature)
        self.inverse_mass = (1.0 / masses).view(1, -1, 1)

    def initial_velocities(self, positions: torch.Tensor) -> torch.Tensor:
        """Maxwell-Boltzmann velocities [n_replicas, n_beads, 3] (nm/ps) at the
        integrator's temperature, for positions [n_replicas, n_beads, 3] (nm)."""
        noise = torch.randn(
            positions.shape,
            generator=self.generator,
            device=positions.device,
            dtype=positions.dtype,
        )
        return noise * torch.sqrt(self.kT * self.inverse_mass)

    @abc.abstractmethod
    def step(
        self,
        positions: torch.Tensor,
        velocities: torch.Tensor,
        forces: torch.Tensor,
        active: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One time step; returns the new (positions, velocities, forces).

        Parameters
        ----------
        positions, velocities, forces
            [n_replicas, n_beads, 3] in nm, nm/ps and kJ/mol/nm; ``forces`` are those at
            ``positions`` (returned by the previous step).
        active
            [n_replicas] booleans; replicas where it is False keep their state.
        """

    def kinetic_energy(self, velocities: torch.Tensor) -> torch.Tensor:
        """Kinetic energies [n_replicas] (kJ/mol) of velocities [n_replicas, n_beads, 3]
        (nm/ps)."""
        return 0.5 * (velocities**2 / self.inverse_mass).sum(dim=(1, 2))


INTEGRATORS: Registry[type[Integrator]] = Registry("integrator", "cgpipe.simulate")
