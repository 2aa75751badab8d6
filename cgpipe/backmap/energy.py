"""The reference's own force field on backmapped structures: potential energies, and an
optional restrained minimisation.

The system is built exactly as the reference stage builds it (the prepared structure,
``reference.forcefield`` and ``reference.solvent``); its constraints (bonds to hydrogen
by default) hold in the minimisation but not in an energy, which OpenMM computes from
the positions as given. Explicit water is not rebuilt around a structure: its energies
are not computed (:func:`solvent_free` says whether they can be).

The minimisation holds every heavy atom near where the backmapper put it by a harmonic
restraint of ``restraint`` kJ/mol/nm^2, holds every stereocentre
(:data:`~cgpipe.residues.STEREOCENTRES`) at the hand it was drawn with by a flat-bottomed
restraint on its chiral volume (zero while the volume keeps, on its side, at least half
the prepared structure's, :data:`CHIRAL_K` below it), and runs OpenMM's L-BFGS to
``tolerance`` kJ/mol/nm or ``max_iterations``; neither restraint is part of the
energies reported. Without the second, a structure whose ring lay on a carbonyl came out
with the ring pushed through its CA: 0.6 % of chignolin's centres turned (100 held-out
frames x 4 draws of the flow). The minimisation mends no hand either: a backmapper's
wrong hands stay for the metrics to see (held to the prepared structure's hands, atoms
scattered around their beads came out with every centre L and no clash).
"""

from __future__ import annotations

import os
from typing import Any

import mdtraj as md
import numpy as np

from cgpipe.errors import InputError
from cgpipe.geometry import chiral_volumes
from cgpipe.residues import stereocentres

_RESTRAINT = "restraint_k"
_CHIRAL = "chiral_k"
CHIRAL_K = 1e9
"""kJ/mol/nm^6 of the chiral-volume restraint: a CA's volume is about 2.7e-3 nm^3, so a
centre flattened to zero volume costs about 900 kJ/mol, a barrier no clash overcomes."""
# The signed volume (a - centre) x (b - centre) . (c - centre) of particles 1 (centre) to 4.
_VOLUME = (
    "(x2-x1)*((y3-y1)*(z4-z1)-(z3-z1)*(y4-y1))"
    "+(y2-y1)*((z3-z1)*(x4-x1)-(x3-x1)*(z4-z1))"
    "+(z2-z1)*((x3-x1)*(y4-y1)-(y3-y1)*(x4-x1))"
)


def solvent_free(params: dict[str, Any]) -> bool:
    """Whether the reference's solvent lets a solute's energy be computed alone."""
    return params["solvent"] != "tip3p"


def _named(topology: md.Topology) -> list[tuple[str, dict[str, int]]]:
    return [(r.name, {a.name: a.index for a in r.atoms}) for r in topology.residues]


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
        import openmm.unit as unit

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
        # Each stereocentre held at the hand a structure is drawn with (set per structure),
        # at least half the prepared structure's volume from flat.
        chiral = openmm.CustomCompoundBondForce(
            4, f"0.5*{_CHIRAL}*min(0, hand*({_VOLUME}) - least)^2"
        )
        chiral.addGlobalParameter(_CHIRAL, 0.0)
        chiral.addPerBondParameter("hand")
        chiral.addPerBondParameter("least")
        centres = np.array(
            [atoms for _, _, atoms, _ in stereocentres(_named(topology))], dtype=np.int64
        ).reshape(-1, 4)
        built = np.asarray(reference.positions.value_in_unit(unit.nanometer), dtype=np.float64)
        self._least = 0.5 * np.abs(chiral_volumes(built, centres))
        for atoms, least in zip(centres, self._least, strict=True):
            chiral.addBond([int(a) for a in atoms], [1.0, float(least)])
        system.addForce(chiral)
        self._chiral = chiral
        self.centres = centres
        platform = openmm.Platform.getPlatformByName("CPU")
        self.context = openmm.Context(
            system, openmm.VerletIntegrator(0.001), platform, {"Threads": "1"}
        )

    def energies(self, positions: np.ndarray) -> np.ndarray:
        """[F] potential energies (kJ/mol) of structures [F, n_atoms, 3] (nm), without
        the restraint."""
        import openmm.unit as unit

        self.context.setParameter(_RESTRAINT, 0.0)
        self.context.setParameter(_CHIRAL, 0.0)
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
        to where they were (``restraint`` kJ/mol/nm^2) and their stereocentres to the
        hands they have (module docstring)."""
        import openmm
        import openmm.unit as unit

        out = np.array(positions, dtype=np.float64)
        for frame, x in enumerate(out):
            for k, atom in enumerate(self.heavy):
                self._restraint.setParticleParameters(k, int(atom), x[atom].tolist())
            self._restraint.updateParametersInContext(self.context)
            hands = np.where(chiral_volumes(x, self.centres) >= 0, 1.0, -1.0)
            for k, (atoms, hand) in enumerate(zip(self.centres, hands, strict=True)):
                self._chiral.setBondParameters(
                    k, [int(a) for a in atoms], [float(hand), float(self._least[k])]
                )
            if len(self.centres):
                self._chiral.updateParametersInContext(self.context)
            self.context.setParameter(_RESTRAINT, restraint)
            self.context.setParameter(_CHIRAL, CHIRAL_K)
            self.context.setPositions(x)
            openmm.LocalEnergyMinimizer.minimize(
                self.context,
                tolerance * unit.kilojoule_per_mole / unit.nanometer,
                max_iterations,
            )
            state = self.context.getState(getPositions=True)
            out[frame] = state.getPositions(asNumpy=True).value_in_unit(unit.nanometer)
        self.context.setParameter(_RESTRAINT, 0.0)
        self.context.setParameter(_CHIRAL, 0.0)
        return out.astype(np.float32)
