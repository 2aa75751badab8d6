"""The ``basic`` force map: aggregation, the sum of the forces on the atoms of each bead.

Each atom's force goes to the one bead it belongs to (the mapping's force weights, 1 for
a centre-atom map's partition); forces between atoms of one bead cancel in the sum. A
constraint held inside one bead would cancel too, which is why the recorded forces, which
lack the constraint forces, still give the mean force (:mod:`cgpipe.constraints`). A
mapping that shares an atom's force among beads needs another force map.
"""

from __future__ import annotations

import numpy as np

from cgpipe.errors import InputError
from cgpipe.forces.base import FORCE_MAPS, ForceMap
from cgpipe.io import TrajectoryData
from cgpipe.mapping import Mapping


@FORCE_MAPS.register("basic")
class Basic(ForceMap):
    """The mapping's own force weights, provided each atom's force goes to one bead."""

    def matrix(self, mapping: Mapping, training: TrajectoryData | None = None) -> np.ndarray:
        xi_f = mapping.force_map
        shared = np.flatnonzero(np.count_nonzero(xi_f, axis=0) > 1)
        if len(shared):
            atom = int(shared[0])
            beads = np.flatnonzero(xi_f[:, atom]).tolist()
            raise InputError(
                f"force map {self.name!r}: mapping {mapping.name!r} puts the force of atom "
                f"{atom} on beads {beads} ({len(shared)} atoms shared); basic aggregation "
                "needs each atom's force on one bead"
            )
        return xi_f
