"""The integrator interface, the state it advances, and the integrator registry.

An integrator advances a batch of replicas of one CG system under an energy-and-forces
function, each replica at its own temperature. Positions, velocities and forces are
tensors [n_replicas, n_beads, 3] in nm, nm/ps and kJ/mol/nm; energies and thermal
energies kT are [n_replicas] in kJ/mol; masses are [n_beads] in amu, so that F/m is in
nm/ps^2 and kinetic energies are in kJ/mol.

A new integrator is one module of this package::

    @INTEGRATORS.register("my_method")
    class MyMethod(Integrator):
        def __init__(self, energy_and_forces, masses, timestep, generator=None, *, option):
            super().__init__(energy_and_forces, masses, timestep, generator)
            ...

        def step(self, state): ...

plus its section ``simulate.my_method`` in the config schema, whose keys are the
keyword-only options of its constructor.

Random numbers are drawn for every replica the batch started with, also for those that
have since been removed from it (:attr:`State.replicas`), so that removing a failed
replica leaves the others' noise, and so their trajectories, unchanged.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from cgpipe.registry import Registry

EnergyAndForces = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""Maps positions [n_replicas, n_beads, 3] (nm) to (energies [n_replicas] in kJ/mol,
forces [n_replicas, n_beads, 3] in kJ/mol/nm)."""


@dataclasses.dataclass
class State:
    """The dynamical state of a batch of replicas.

    Attributes
    ----------
    positions, velocities, forces
        [n_replicas, n_beads, 3] in nm, nm/ps and kJ/mol/nm; ``forces`` and ``energies``
        are those at ``positions``.
    energies
        [n_replicas] potential energies (kJ/mol).
    kT
        [n_replicas] thermal energy of each replica's temperature (kJ/mol).
    replicas
        [n_replicas] long: each row's replica number among the ``n_total`` replicas the
        batch started with (rows of removed replicas are gone; the rest keep theirs).
    n_total
        Replicas the batch started with.
    """

    positions: torch.Tensor
    velocities: torch.Tensor
    forces: torch.Tensor
    energies: torch.Tensor
    kT: torch.Tensor
    replicas: torch.Tensor
    n_total: int

    TENSORS: ClassVar[tuple[str, ...]] = (
        "positions",
        "velocities",
        "forces",
        "energies",
        "kT",
        "replicas",
    )

    @property
    def complete(self) -> bool:
        """Whether every replica the batch started with is still in it."""
        return len(self.replicas) == self.n_total

    def select(self, rows: torch.Tensor) -> State:
        """The state of ``rows`` (indices or a boolean mask over the batch) alone."""
        return dataclasses.replace(
            self, **{name: getattr(self, name)[rows] for name in self.TENSORS}
        )

    def to_dict(self) -> dict[str, Any]:
        """Tensors on the CPU and ``n_total``: what a checkpoint stores."""
        saved: dict[str, Any] = {name: getattr(self, name).cpu() for name in self.TENSORS}
        saved["n_total"] = self.n_total
        return saved

    @classmethod
    def from_dict(cls, saved: dict[str, Any], device: torch.device | str) -> State:
        """The state :meth:`to_dict` stored, on ``device``."""
        tensors = {name: saved[name].to(device) for name in cls.TENSORS}
        return cls(**tensors, n_total=int(saved["n_total"]))


class Integrator(abc.ABC):
    """Batched dynamics of replicas of one CG system, each at its own temperature.

    Parameters
    ----------
    energy_and_forces
        Maps positions [n_replicas, n_beads, 3] (nm) to (energies [n_replicas] kJ/mol,
        forces [n_replicas, n_beads, 3] kJ/mol/nm).
    masses
        [n_beads] bead masses in amu.
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
    inverse_mass
        [1, n_beads, 1] inverse masses in 1/amu, broadcasting over positions.
    """

    name: ClassVar[str]
    capturable: ClassVar[bool] = True
    """Whether a step keeps no host-side state, so that steps can be captured as a CUDA
    graph and replayed."""
    rungs: int = 1
    """Rows of the batch per replica: 1, or the temperatures of a parallel-tempering
    ladder (rows ``r * rungs`` .. ``r * rungs + rungs - 1`` are replica r's, the first at
    the target temperature)."""

    def __init__(
        self,
        energy_and_forces: EnergyAndForces,
        masses: torch.Tensor,
        timestep: float,
        generator: torch.Generator | None = None,
    ) -> None:
        if masses.ndim != 1:
            raise ValueError(f"masses have shape {tuple(masses.shape)}, expected [n_beads]")
        self.energy_and_forces = energy_and_forces
        self.masses = masses
        self.timestep = timestep
        self.generator = generator
        self.inverse_mass = (1.0 / masses).view(1, -1, 1)

    def normal(self, state: State) -> torch.Tensor:
        """Standard normal variates [n_replicas, n_beads, 3], drawn for all
        ``state.n_total`` replicas and taken for the batch's rows."""
        positions = state.positions
        noise = torch.randn(
            (state.n_total, *positions.shape[1:]),
            generator=self.generator,
            device=positions.device,
            dtype=positions.dtype,
        )
        return noise if state.complete else noise[state.replicas]

    def expand(
        self, positions: torch.Tensor, kT: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch's rows for replicas starting at ``positions`` [n_replicas, n_beads, 3]
        at target ``kT`` [n_replicas]: ``rungs`` rows per replica (here one, as given)."""
        return positions, kT

    def start(self, positions: torch.Tensor, kT: torch.Tensor) -> State:
        """The state of replicas at ``positions`` [n_replicas, n_beads, 3] (nm), at target
        ``kT`` [n_replicas] (kJ/mol), with Maxwell-Boltzmann velocities at each row's kT
        (:meth:`expand` makes the rows)."""
        kT = torch.as_tensor(kT, dtype=positions.dtype, device=positions.device)
        if kT.shape != (positions.shape[0],):
            raise ValueError(f"kT has shape {tuple(kT.shape)}, expected [{positions.shape[0]}]")
        positions, kT = self.expand(positions, kT)
        n_replicas = positions.shape[0]
        energies, forces = self.energy_and_forces(positions)
        replicas = torch.arange(n_replicas, device=positions.device)
        state = State(positions, positions, forces, energies, kT, replicas, n_replicas)
        state.velocities = self.normal(state) * torch.sqrt(self.thermal(kT) * self.inverse_mass)
        return state

    @staticmethod
    def thermal(kT: torch.Tensor) -> torch.Tensor:
        """``kT`` [n_replicas] shaped [n_replicas, 1, 1] to broadcast over positions."""
        return kT.view(-1, 1, 1)

    @abc.abstractmethod
    def step(self, state: State) -> State:
        """One time step: the new state (new tensors; ``state`` is left as it was)."""

    def kinetic_energy(self, velocities: torch.Tensor) -> torch.Tensor:
        """Kinetic energies [n_replicas] (kJ/mol) of velocities [n_replicas, n_beads, 3]
        (nm/ps)."""
        return 0.5 * (velocities**2 / self.inverse_mass).sum(dim=(1, 2))

    def exchange_table(self, temperature: float) -> list[dict[str, Any]]:
        """Rows of exchange statistics (replica exchange; none here) for target
        ``temperature`` (K)."""
        return []

    def state_dict(self) -> dict[str, Any]:
        """What a checkpoint needs of the integrator beyond the state and the generator
        (counters of an integrator that has them); plain data or CPU tensors."""
        return {}

    def load_state_dict(self, saved: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Restore what :meth:`state_dict` returned (nothing, unless overridden)."""


INTEGRATORS: Registry[type[Integrator]] = Registry("integrator", "cgpipe.simulate")
