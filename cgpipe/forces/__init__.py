"""Force projection: CG coordinates z = Xi x and CG forces F = Xi_f f.

The force map Xi_f is a plug-in: a :class:`ForceMap` in its own module of this package,
registered in :data:`FORCE_MAPS` and chosen by ``forces.force_map``. With Xi_f Xi^T = I
(and, for a reference with constraints, Xi_f blind to the constraint forces, which the
reference does not record: :mod:`cgpipe.constraints`) the conditional mean of the
projected force is the mean force -grad A(z) (the potential of mean force), which force
matching then learns.

:func:`run` is the stage: project every reference trajectory into one CG file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from cgpipe.constraints import check_constraints
from cgpipe.data import fitting_frames
from cgpipe.errors import InputError
from cgpipe.forces.base import FORCE_MAPS, ForceMap
from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_trajectory
from cgpipe.mapping import Mapping, read_mapping
from cgpipe.stages import write_resolved_config

__all__ = ["FORCE_MAPS", "ForceMap", "check_constraints", "project", "run"]


def project(
    data: TrajectoryData, mapping: Mapping, force_map: np.ndarray | None = None
) -> TrajectoryData:
    """Map all-atom positions and forces to CG positions (nm) and forces (kJ/mol/nm).

    Parameters
    ----------
    data
        All-atom frames on ``mapping.n_atoms`` atoms.
    mapping
        The CG map; its coordinate map Xi gives the bead positions.
    force_map
        Xi_f, [n_beads, n_atoms]; the mapping's own force map when ``None``.
    """
    if data.topology.n_atoms != mapping.n_atoms:
        raise InputError(
            f"mapping {mapping.name!r} is for {mapping.n_atoms} atoms, the trajectory has "
            f"{data.topology.n_atoms}"
        )
    if force_map is None:
        force_map = mapping.force_map
    if force_map.shape != (mapping.n_beads, mapping.n_atoms):
        raise ValueError(
            f"force map has shape {force_map.shape}, expected "
            f"[{mapping.n_beads} beads, {mapping.n_atoms} atoms]"
        )
    xi = mapping.coordinate_map.astype(np.float32)
    coordinates = np.einsum("ba,fad->fbd", xi, data.coordinates)
    forces = None
    if data.forces is not None:
        forces = np.einsum("ba,fad->fbd", force_map.astype(np.float32), data.forces)
    return TrajectoryData(
        topology=mapping.topology,
        coordinates=coordinates,
        time=data.time,
        forces=forces,
        trajectory_index=data.trajectory_index,
    )


def run(
    references: Sequence[str | os.PathLike[str]],
    mapping_path: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    cfg: dict[str, Any],
    fold: int | None = None,
) -> None:
    """Project every reference trajectory with the configured force map into one CG file.

    Trajectory ``i`` of ``references`` gets label ``i`` (``trajectory_index``) in the
    output; the resolved configuration is written beside it. A reference generated with
    holonomic constraints (its provenance's ``constraints``) is refused, before anything
    is written, when the force map splits a constrained atom pair between beads
    (:func:`cgpipe.constraints.check_constraints`).

    Parameters
    ----------
    references
        All-atom reference trajectories (HDF5, positions and forces), in order.
    mapping_path
        The mapping artifact (Parquet).
    output
        The CG HDF5 file to write: positions in nm, forces in kJ/mol/nm.
    cfg
        The validated configuration; ``cfg["forces"]["force_map"]`` names the force map,
        ``cfg["forces"][<name>]`` holds its options.
    fold
        For a fitted force map, the fold whose training trajectories it is fitted to
        (``0 .. train.n_folds - 1``); the output then belongs to that fold alone.
    """
    if not references:
        raise InputError("the forces stage needs at least one reference trajectory")
    mapping = read_mapping(mapping_path)
    name = cfg["forces"]["force_map"]
    method = FORCE_MAPS.get(name)(**cfg["forces"].get(name, {}))
    training = None
    if method.fitted:
        training = fitting_frames(f"force map {name!r}", references, cfg["train"]["n_folds"], fold)
    force_map = method.matrix(mapping, training)
    parts = []
    for path in references:
        data = read_trajectory(path)  # its errors name the file already
        try:
            parts.append(project(data, mapping, force_map))
        except InputError as error:  # names the mapping, not the trajectory
            raise InputError(f"{path}: {error}") from error
        # The constraints the reference was generated with (absent for downloaded data).
        constraints = data.provenance.get("config", {}).get("constraints")
        check_constraints(data.topology, constraints, mapping, force_map, path)
    combined = TrajectoryData.concatenate(parts)
    config = {**cfg["forces"], "trajectories": [str(p) for p in references]}
    if method.fitted:
        config["fold"] = fold
    write_trajectory(output, combined, Provenance("forces", config, [mapping_path, *references]))
    write_resolved_config(output, cfg)
