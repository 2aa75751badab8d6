"""Force projection: CG coordinates z = Xi x and CG forces F = Xi_f f.

Basic aggregation sums the forces on the atoms of each bead (the bead's centre and
the hydrogens that follow it). With Xi_f Xi^T = I and constraint forces cancelling
inside each bead, the conditional mean of the projected force is the mean force
-grad A(z) (the potential of mean force), which force matching then learns.
"""

from __future__ import annotations

import numpy as np

from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData
from cgpipe.mapping import Mapping


def project(data: TrajectoryData, mapping: Mapping) -> TrajectoryData:
    """Map all-atom positions and forces to CG positions (nm) and forces (kJ/mol/nm)."""
    if data.topology.n_atoms != mapping.n_atoms:
        raise InputError(
            f"mapping {mapping.name!r} is for {mapping.n_atoms} atoms, the trajectory has "
            f"{data.topology.n_atoms}"
        )
    xi = mapping.coordinate_map.astype(np.float32)
    coordinates = np.einsum("ba,fad->fbd", xi, data.coordinates)
    forces = None
    if data.forces is not None:
        forces = np.einsum("ba,fad->fbd", mapping.force_map.astype(np.float32), data.forces)
    return TrajectoryData(
        topology=mapping.topology,
        coordinates=coordinates,
        time=data.time,
        forces=forces,
        trajectory_index=data.trajectory_index,
    )
