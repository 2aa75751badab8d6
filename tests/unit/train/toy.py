"""Toy CG data, written as the forces and mapping stages write theirs."""

from __future__ import annotations

from pathlib import Path

import mdtraj as md
import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.io import Provenance, TrajectoryData, write_trajectory
from cgpipe.mapping import Mapping, write_mapping

CHAIN = np.array(
    [[0.0, 0, 0], [0.13, 0.05, 0], [0.2, 0.16, 0.02], [0.33, 0.17, 0.07], [0.4, 0.28, 0.05]]
)  # nm, a zig-zag of 5 beads
TYPES = [0, 2, 1, 0, 2]
WELL = 500.0  # kJ/mol/nm^2: forces -WELL (z - centroid(z)) plus noise


def write_cg(
    folder: Path,
    positions: np.ndarray,
    forces: np.ndarray | None,
    trajectory_index: np.ndarray,
    bead_types: list[int],
) -> tuple[Path, Path]:
    """A CG trajectory file and the identity mapping of a chain of beads; (cg, mapping)."""
    n_beads = positions.shape[1]
    topology = md.Topology()
    residue = topology.add_residue("TOY", topology.add_chain())
    atoms = [topology.add_atom(f"B{i}", md.element.carbon, residue) for i in range(n_beads)]
    for a, b in zip(atoms, atoms[1:], strict=False):
        topology.add_bond(a, b)
    table = pd.DataFrame(
        {
            keys.BEAD: range(n_beads),
            keys.ATOM: range(n_beads),
            keys.WEIGHT: 1.0,
            keys.FORCE_WEIGHT: 1.0,
            keys.BEAD_NAME: [f"B{i}" for i in range(n_beads)],
            keys.BEAD_TYPE: bead_types,
            keys.BEAD_MASS: 12.0,
            keys.RESIDUE_INDEX: 0,
            keys.RESIDUE_NAME: "TOY",
            keys.RESIDUE_SEQ: 1,
        }
    )
    folder.mkdir(parents=True, exist_ok=True)
    mapping_path, cg_path = folder / "toy.parquet", folder / "toy.h5"
    write_mapping(mapping_path, Mapping("toy", n_beads, table, topology), Provenance("mapping"))
    write_trajectory(
        cg_path,
        TrajectoryData(
            topology,
            positions.astype(np.float32),
            np.arange(len(positions), dtype=np.float64),
            forces=None if forces is None else forces.astype(np.float32),
            trajectory_index=trajectory_index,
        ),
        Provenance("forces"),
    )
    return cg_path, mapping_path
