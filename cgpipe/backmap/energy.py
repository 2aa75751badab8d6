"""The reference's own force field on backmapped structures: potential energies, and an
optional restrained minimisation.

The system is built exactly as the reference stage builds it (the prepared structure,
``reference.forcefield`` and ``reference.solvent``); its constraints (bonds to hydrogen
by default) hold in the minimisation but not in an energy, which OpenMM computes from
the positions as given. Explicit water is not rebuilt around a structure: its energies
are not computed (:func:`solvent_free` says whether they can be).

The minimisation holds every heavy atom near where the backmapper put it by a harmonic
restraint of ``restraint`` kJ/mol/nm^2 (the restraint is not part of the energies
reported) and runs OpenMM's L-BFGS to ``tolerance`` kJ/mol/nm or ``max_iterations``.
"""

from __future__ import annotations

import os
from typing import Any

import mdtraj as md
import numpy as np

from cgpipe.errors import InputError

_RESTRAINT = "restraint_k"


def solvent_free(params: dict[str, Any]) -> bool:
    """Whether the reference's solvent lets a solute's energy be computed alone."""
    return params["solvent"] != "tip3p"


class ForceField:
    """The reference's force field on structures of ``topology``'s atoms.

    Parameters
    ----------
    structure
        The reference's prepared structure (PDB), atoms in the order of ``topology``.
    params
        The ``reference`` config section.
    topology
        The all-atom topology of the structures (the reference trajectories').
    """

    def __init__(
        self, structure: str | os.PathLike[str], params: dict[str, Any], topology: md.Topology
    ) -> None:
        import openmm  # here: the backmap registry imports this module in every environment

        from cgpipe.reference.openmm_generation import ReferenceSystem

        if not solvent_free(params):
            raise InputError(
                f"{structure}: explicit water; backmapped solutes have no energy without it"
            )
        reference = ReferenceSystem(structure, params, temperature=300.0)
        names = [(a.residue.name, a.name) for a in topology.atoms]
        built = [(a.residue.name, a.name) for a in reference.topology.atoms()]
        if names != built:
            raise InputError(
                f"{structure}: its {len(built)} atoms are not the backmapped structures' "
                f"{len(names)} in order"
            )
        system = reference.system(barostat=False)
        self.heavy = np.array(
            [a.index for a in topology.atoms if a.element is not None and a.element.number > 1]
        )
        restraint = openmm.CustomExternalForce(f"0.5*{_RESTRAINT}*((x-x0)^2+(y-y0)^2+(z-z0)^2)")
        restraint.addGlobalParameter(_RESTRAINT, 0.0)
        for name in ("x0", "y0", "z0"):
            restraint.addPerParticleParameter(name)
        for atom in self.heavy:
            restraint.addParticle(int(atom), [0.0, 0.0, 0.0])
        system.addForce(restraint)
        self._restraint = restraint
        platform = openmm.Platform.getPlatformByName("CPU")
        self.context = openmm.Context(
            system, openmm.VerletIntegrator(0.001), platform, {"Threads": "1"}
        )

    def energies(self, positions: np.ndarray) -> np.ndarray:
        """[F] potential energies (kJ/mol) of structures [F, n_atoms, 3] (nm), without
        the restraint."""
        import openmm.unit as unit

        self.context.setParameter(_RESTRAINT, 0.0)
        out = np.empty(len(positions))
        for frame, x in enumerate(np.asarray(positions, dtype=np.float64)):
            self.context.setPositions(x)
            state = self.context.getState(getEnergy=True)
            out[frame] = state.getPotentialEnergy().value_in_unit(unit.kilojoule_per_mole)
        return out

    def minimise(
        self,
        positions: np.ndarray,
        *,
        restraint: float = 10000.0,
        tolerance: float = 10.0,
        max_iterations: int = 500,
    ) -> np.ndarray:
        """Structures [F, n_atoms, 3] (nm) minimised with their heavy atoms restrained
        to where they were (``restraint`` kJ/mol/nm^2)."""
        import openmm
        import openmm.unit as unit

        out = np.array(positions, dtype=np.float64)
        for frame, x in enumerate(out):
            for k, atom in enumerate(self.heavy):
                self._restraint.setParticleParameters(k, int(atom), x[atom].tolist())
            self._restraint.updateParametersInContext(self.context)
            self.context.setParameter(_RESTRAINT, restraint)
            self.context.setPositions(x)
            openmm.LocalEnergyMinimizer.minimize(
                self.context,
                tolerance * unit.kilojoule_per_mole / unit.nanometer,
                max_iterations,
            )
            state = self.context.getState(getPositions=True)
            out[frame] = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        self.context.setParameter(_RESTRAINT, 0.0)
        return out.astype(np.float32)
