"""CG mappings: the linear map Xi (n_beads x n_atoms) and its force map Xi_f.

A :class:`Mapping` holds, per bead, the atoms it is built from with a coordinate
weight (the row of Xi) and a force weight (the row of Xi_f), the bead names, types and
masses, and the CG topology that mdtraj and VMD read. Mapping methods are plug-ins: a
:class:`MappingMethod` in its own module of this package, registered in
:data:`MAPPINGS`; the centre-atom maps share :class:`cgpipe.mapping.fixed.FixedMapping`.

:func:`run` is the stage: build the named mapping and write its artifact.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from cgpipe.data import fitting_frames
from cgpipe.errors import InputError
from cgpipe.io import Provenance, read_trajectory
from cgpipe.mapping.artifact import read_mapping, write_mapping
from cgpipe.mapping.base import MAPPINGS, Mapping, MappingMethod
from cgpipe.mapping.fixed import assign_atoms
from cgpipe.stages import write_resolved_config

__all__ = [
    "MAPPINGS",
    "Mapping",
    "MappingMethod",
    "assign_atoms",
    "read_mapping",
    "run",
    "write_mapping",
]


def run(
    references: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    name: str,
    cfg: dict[str, Any],
    fold: int | None = None,
) -> Mapping:
    """Build the mapping ``name`` and write its artifact and the resolved configuration.

    A fixed map reads only the topology of ``references[0]``; a fitted map reads every
    reference and is given the all-atom frames of ``fold``'s training trajectories only.

    Parameters
    ----------
    references
        The system's all-atom reference trajectories (HDF5), in order.
    output
        The mapping Parquet file to write.
    name
        A registered mapping; its options are the section ``cfg["mapping"][name]``.
    cfg
        The validated configuration (:func:`cgpipe.config.load_config`).
    fold
        The cross-validation fold (``0 .. train.n_folds - 1``) a fitted map is built for.

    Returns
    -------
    Mapping
        The mapping written to ``output``.
    """
    if not references:
        raise InputError("the mapping stage needs at least one reference trajectory")
    method = MAPPINGS.get(name).from_config(cfg["mapping"])
    section = dict(cfg["mapping"].get(name, {}))
    if method.fitted:
        training = fitting_frames(f"mapping {name!r}", references, cfg["train"]["n_folds"], fold)
        topology, inputs = training.topology, list(references)
        # What the map was fitted to: the held-out trajectories are not among them.
        extra = {"training_trajectories": [str(references[i]) for i in training.trajectories]}
    else:
        training, extra = None, {}
        topology, inputs = read_trajectory(references[0], stride=10**9).topology, [references[0]]
    mapping = method.build(topology, training)
    if mapping.name != name or mapping.n_atoms != topology.n_atoms:
        raise ValueError(
            f"mapping {name!r} built {mapping.name!r} on {mapping.n_atoms} atoms, expected "
            f"{name!r} on the topology's {topology.n_atoms}"
        )
    mapping.check()
    provenance = Provenance(
        "mapping", {"mapping": name, **section, "fold": fold}, inputs, extra=extra
    )
    write_mapping(output, mapping, provenance)
    write_resolved_config(output, cfg)
    return mapping
