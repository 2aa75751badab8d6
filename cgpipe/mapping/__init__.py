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

from cgpipe.constraints import check_constraints
from cgpipe.data import fitting_frames
from cgpipe.epochs import folder_checkpoint
from cgpipe.errors import InputError
from cgpipe.io import Provenance, read_trajectory, sha256sum, write_table
from cgpipe.io.blocks import Blocks, fingerprint
from cgpipe.mapping.artifact import read_mapping, write_mapping
from cgpipe.mapping.base import MAPPINGS, Mapping, MappingMethod
from cgpipe.mapping.fixed import assign_atoms
from cgpipe.mapping.user import UserMap
from cgpipe.stages import write_resolved_config

__all__ = [
    "MAPPINGS",
    "Mapping",
    "MappingMethod",
    "assign_atoms",
    "fit_table_path",
    "mapping_method",
    "read_mapping",
    "run",
    "write_mapping",
]


def mapping_method(name: str, sections: dict[str, Any]) -> MappingMethod:
    """The method that builds the mapping ``name``: a user's map file named in
    ``sections["files"]``, else the registered method (``MAPPINGS``) built from its section.

    Parameters
    ----------
    name
        A value of the ``{mapping}`` wildcard.
    sections
        The configuration's ``mapping`` section.
    """
    files = sections.get("files", {})
    if name in files:
        if name in MAPPINGS.names():
            raise InputError(
                f"mapping.files.{name}: a user map may not take the name of the registered "
                f"mapping {name!r}"
            )
        return UserMap(name=name, path=files[name])
    return MAPPINGS.get(name).from_config(sections)


def fit_table_path(output: str | os.PathLike[str]) -> str:
    """Where a fitted map's fit table goes: ``<artifact stem>.fit.parquet`` beside it."""
    text = os.fspath(output)
    return text.removesuffix(".parquet") + ".fit.parquet"


def run(
    references: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    name: str,
    cfg: dict[str, Any],
    fold: int | None = None,
    seed: int | None = None,
) -> Mapping:
    """Build the mapping ``name`` and write its artifact and the resolved configuration.

    A fixed map reads only the topology of ``references[0]``; a fitted map reads every
    reference and is given the all-atom frames of ``fold``'s training trajectories only,
    and its fit table (elbow curve, losses) goes to :func:`fit_table_path`. A map whose
    beads split a pair of atoms that the reference's constraints hold together (its
    provenance's ``constraints``) is refused, naming the atoms, before anything is written.

    Parameters
    ----------
    references
        The system's all-atom reference trajectories (HDF5), in order.
    output
        The mapping Parquet file to write.
    name
        A registered mapping (its options are the section ``cfg["mapping"][name]``) or a
        user map named in ``cfg["mapping"]["files"]``.
    cfg
        The validated configuration (:func:`cgpipe.config.load_config`).
    fold
        The cross-validation fold (``0 .. train.n_folds - 1``) a fitted map is built for.
    seed
        A fitted map's random stream (the command line's is
        :func:`cgpipe.seeds.stage_seed` of the system, mapping and fold); a fixed map
        draws nothing and takes none.

    Returns
    -------
    Mapping
        The mapping written to ``output``.
    """
    if not references:
        raise InputError("the mapping stage needs at least one reference trajectory")
    method = mapping_method(name, cfg["mapping"])
    first = read_trajectory(references[0], stride=10**9)  # its topology and provenance
    section = dict(cfg["mapping"].get(name, {}))
    if isinstance(method, UserMap):
        section = {"file": os.fspath(method.path)}
    if method.fitted:
        training = fitting_frames(f"mapping {name!r}", references, cfg["train"]["n_folds"], fold)
        topology, inputs = training.topology, list(references)
        # What the map was fitted to: the held-out trajectories are not among them.
        extra = {"training_trajectories": [str(references[i]) for i in training.trajectories]}
    else:
        training, extra = None, {}
        topology, inputs = first.topology, [references[0]]
        if isinstance(method, UserMap):
            inputs.append(method.path)
    if method.fitted and seed is None:
        raise ValueError(f"fitted mapping {name!r} needs a seed")
    blocks = None
    if method.fitted:  # a fit in epochs saves each and a killed job goes on from there
        facts = {"mapping": name, "section": section, "fold": fold, "seed": seed}
        facts |= {"n_folds": cfg["train"]["n_folds"], "inputs": [sha256sum(p) for p in inputs]}
        blocks = Blocks(os.fspath(output) + ".checkpoint", fingerprint(**facts))
        method.checkpoint = folder_checkpoint(blocks)
    mapping = method.build(topology, training, seed=0 if seed is None else seed)
    if mapping.name != name or mapping.n_atoms != topology.n_atoms:
        raise ValueError(
            f"mapping {name!r} built {mapping.name!r} on {mapping.n_atoms} atoms, expected "
            f"{name!r} on the topology's {topology.n_atoms}"
        )
    mapping.check()
    constraints = first.provenance.get("config", {}).get("constraints")
    check_constraints(topology, constraints, mapping, mapping.force_map, references[0])
    config = {"mapping": name, **section, "fold": fold}
    if method.fitted:
        config["seed"] = seed
    provenance = Provenance("mapping", config, inputs, extra=extra)
    if method.fitted:
        if method.fit_table is None:
            raise ValueError(f"fitted mapping {name!r} kept no fit table")
        write_table(fit_table_path(output), method.fit_table, provenance)
    write_mapping(output, mapping, provenance)
    write_resolved_config(output, cfg)
    if blocks is not None:
        blocks.remove()
    return mapping
