"""The linear CG map and the interface every mapping method implements.

A CG map takes all-atom positions x [n_atoms, 3] (nm) to bead positions z = Xi x and
all-atom forces f [n_atoms, 3] (kJ/mol/nm) to bead forces F = Xi_f f. The map is
consistent (its mean projected force is the mean force -grad A(z)) when the rows of
Xi sum to 1 and Xi_f Xi^T = I (Noid et al., J. Chem. Phys. 128, 244114 (2008)). A
:class:`Mapping` holds both matrices as one tidy table, with the bead names, types,
masses and the CG topology that mdtraj and VMD read.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import mdtraj as md
import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.epochs import EpochCheckpoint
from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData
from cgpipe.registry import Registry


@dataclasses.dataclass
class Mapping:
    """A linear CG map.

    Attributes
    ----------
    name
        Mapping name (a value of the ``{mapping}`` wildcard).
    n_atoms
        Atoms in the all-atom system.
    table
        One row per (bead, atom) with a nonzero coordinate or force weight: columns
        ``bead, atom, weight, force_weight, bead_name, bead_type, mass, residue_index,
        residue_name, residue_seq`` (``mass`` in amu, the bead's).
    topology
        CG topology: one atom per bead, beads grouped in their residues.
    """

    name: str
    n_atoms: int
    table: pd.DataFrame
    topology: md.Topology

    @property
    def n_beads(self) -> int:
        return self.topology.n_atoms

    def _matrix(self, column: str) -> np.ndarray:
        matrix = np.zeros((self.n_beads, self.n_atoms))
        matrix[self.table[keys.BEAD].to_numpy(), self.table[keys.ATOM].to_numpy()] = self.table[
            column
        ].to_numpy()
        return matrix

    @property
    def coordinate_map(self) -> np.ndarray:
        """Xi, [n_beads, n_atoms]: z = Xi x."""
        return self._matrix(keys.WEIGHT)

    @property
    def force_map(self) -> np.ndarray:
        """The mapping's own force map Xi_f, [n_beads, n_atoms]: F_cg = Xi_f f."""
        return self._matrix(keys.FORCE_WEIGHT)

    @property
    def beads(self) -> pd.DataFrame:
        """The bead table, one row per bead."""
        columns = [
            keys.BEAD_NAME,
            keys.BEAD_TYPE,
            keys.BEAD_MASS,
            keys.RESIDUE_INDEX,
            keys.RESIDUE_NAME,
            keys.RESIDUE_SEQ,
        ]
        return self.table.groupby(keys.BEAD, sort=True)[columns].first()

    @property
    def bead_types(self) -> np.ndarray:
        """[n_beads] integer bead types (beads of one type are interchangeable)."""
        return self.beads[keys.BEAD_TYPE].to_numpy(dtype=np.int64)

    @property
    def bead_masses(self) -> np.ndarray:
        """[n_beads] masses in amu."""
        return self.beads[keys.BEAD_MASS].to_numpy(dtype=np.float64)

    @property
    def bonds(self) -> np.ndarray:
        """[n_bonds, 2] bead pairs bonded in the CG topology."""
        pairs = [(b.atom1.index, b.atom2.index) for b in self.topology.bonds]
        return np.array(sorted(tuple(sorted(p)) for p in pairs), dtype=np.int64).reshape(-1, 2)

    def check(self) -> None:
        """Assert the consistency conditions of a linear map and its force map: the rows of
        Xi sum to 1 (translation) and Xi_f Xi^T = I. An atom's force may be shared by
        several beads (optimal and soft force maps); whether a force map allows that is
        the force map's business."""
        xi, xi_f = self.coordinate_map, self.force_map
        if not np.allclose(xi.sum(axis=1), 1.0):
            raise ValueError(f"mapping {self.name}: rows of Xi must sum to 1 (translation)")
        if not np.allclose(xi_f @ xi.T, np.eye(self.n_beads)):
            raise ValueError(f"mapping {self.name}: force map violates Xi_f Xi^T = I")


class MappingMethod:
    """A way to build a :class:`Mapping` on an all-atom topology.

    A method is a subclass in its own module of :mod:`cgpipe.mapping`, registered with
    ``@MAPPINGS.register("<name>")``; its constructor takes the options of its config
    section ``mapping.<name>`` as keyword arguments.

    Attributes
    ----------
    name
        The registered name, set by the registry; the built mapping carries it.
    fitted
        True for a method fitted to data (a learned map): :meth:`build` then receives the
        all-atom training frames of one cross-validation fold, never a held-out frame.
    fit_table
        After :meth:`build`, a fitted method's record of the fit, one row per step (the
        elbow curve of k-means, the losses per epoch of Autograin); the stage writes it
        beside the artifact. ``None`` for a fixed map.
    checkpoint
        Set by the stage before :meth:`build`: where a fit run in epochs
        (:func:`cgpipe.epochs.run_epochs`) saves its state and resumes from; ``None``:
        nowhere.
    """

    name: ClassVar[str]
    fitted: ClassVar[bool] = False
    fit_table: pd.DataFrame | None = None
    checkpoint: EpochCheckpoint | None = None

    def __init__(self, **section: object) -> None:
        if section:
            raise InputError(f"mapping {self.name!r} takes no options; got {sorted(section)}")

    # --- checks of a method's options, errors naming ``mapping.<name>.<key>`` ---------------
    def integer_option(self, key: str, value: object, least: int) -> int:
        """``value`` as an int of at least ``least``, or an input error naming the key."""
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise InputError(
                f"mapping.{self.name}.{key} must be an integer >= {least}, got {value!r}"
            )
        return int(value)

    def number_option(self, key: str, value: object, *, positive: bool) -> float:
        """``value`` as a finite float, > 0 (``positive``) or >= 0, or an input error."""
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise InputError(f"mapping.{self.name}.{key} must be a number, got {value!r}")
        number = float(value)
        if not np.isfinite(number) or number < 0 or (positive and number == 0):
            bound = "> 0" if positive else ">= 0"
            raise InputError(f"mapping.{self.name}.{key} must be finite and {bound}, got {value}")
        return number

    def choice_option(self, key: str, value: object, choices: tuple[str, ...]) -> str:
        """``value`` if it is one of ``choices``, else an input error naming the key."""
        if value not in choices:
            raise InputError(
                f"mapping.{self.name}.{key} must be one of {list(choices)}, got {value!r}"
            )
        return str(value)

    @classmethod
    def from_config(cls, sections: dict[str, Any]) -> MappingMethod:
        """The method built from the configuration's ``mapping`` section: its own section as
        keyword arguments (a method that reuses another's rule, such as Autograin taking its
        number of beads from the k-means elbow, overrides this)."""
        return cls(**sections.get(cls.name, {}))

    def build(
        self, topology: md.Topology, training: TrajectoryData | None, *, seed: int = 0
    ) -> Mapping:
        """Build the mapping.

        Parameters
        ----------
        topology
            The all-atom topology (n_atoms atoms, bonds included).
        training
            For a fitted method, the fold's training frames (all-atom positions in nm and
            forces in kJ/mol/nm, labelled by trajectory); ``None`` for a fixed one.
        seed
            Seeds whatever a fitted method draws (initial centroids, Gumbel noise).

        Returns
        -------
        Mapping
            A map on ``topology`` named :attr:`name` that passes :meth:`Mapping.check`.
        """
        raise NotImplementedError


MAPPINGS: Registry[type[MappingMethod]] = Registry("mapping", "cgpipe.mapping")
