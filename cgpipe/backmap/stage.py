"""The backmapping stage, in two jobs.

:func:`fit`: one backmapper (a name in ``backmap.methods``) fitted once per (system,
mapping, fold) on the fold's training trajectories only, saved as a checkpoint, and
scored on the fold's held-out frames, whose truth is known (``heldout.parquet``).

:func:`run`: that fitted backmapper applied to one model's CG trajectory of the fold:
the all-atom trajectory (every structure drawn, a frame's samples together) and one row
per structure with its quality (:mod:`cgpipe.backmap.scoring`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.backmap.base import BACKMAPPERS, load_backmapper, save_backmapper
from cgpipe.backmap.energy import ForceField, solvent_free
from cgpipe.backmap.scoring import UNITS, Standard, cg_phi_psi, heldout_scores, structure_table
from cgpipe.data import FoldData, evenly, subset
from cgpipe.device import select_device
from cgpipe.epochs import folder_checkpoint
from cgpipe.errors import InputError
from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_table, write_trajectory
from cgpipe.io.blocks import Blocks, fingerprint
from cgpipe.mapping import read_mapping
from cgpipe.paths import (
    BACKMAP_HELDOUT_FILE,
    BACKMAP_LOSSES_FILE,
    BACKMAP_TABLE_FILE,
    BACKMAPPER_FILE,
    TRAJECTORY_FILE,
)
from cgpipe.stages import write_resolved_config

STANDARD_FRAMES = 2000
"""Training frames (spread evenly) whose mean bonds, angles and hands structures are
measured against."""
PHI_CG, PSI_CG, PHI_ATOMS, PSI_ATOMS = keys.PHI_CG, keys.PSI_CG, keys.PHI_ATOMS, keys.PSI_ATOMS


def _cg_of(data: TrajectoryData, xi: np.ndarray, topology: Any) -> TrajectoryData:
    return TrajectoryData(
        topology,
        np.einsum("ba,fad->fbd", xi, data.coordinates),
        data.time,
        trajectory_index=data.trajectory_index,
    )


def _forcefield(
    structure: str | os.PathLike[str] | None, cfg: dict[str, Any], topology: Any
) -> ForceField | None:
    """The reference's force field where the system has a prepared structure and no
    explicit water (downloaded data and explicit water: None)."""
    if structure is None or not solvent_free(cfg["reference"]):
        return None
    return ForceField(structure, cfg["reference"], topology)


def _minimise(params: dict[str, Any]) -> dict[str, float] | None:
    return {"restraint": params["restraint"]} if params["minimise"] else None


def _standard(folds: FoldData) -> Standard:
    training = folds.training
    frames = evenly(np.arange(training.n_frames), STANDARD_FRAMES)
    return Standard.from_frames(training.topology, training.coordinates[frames])


def fit(
    references: list[str | os.PathLike[str]],
    mapping_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    fold: int,
    method: str,
    cfg: dict[str, Any],
    seed: int,
    threads: int = 1,
    structure: str | os.PathLike[str] | None = None,
) -> None:
    """Fit backmapper ``method`` on fold ``fold``'s training trajectories and score it
    on the fold's held-out frames.

    Writes, in ``output_dir``: the checkpoint (:data:`~cgpipe.paths.BACKMAPPER_FILE`),
    the held-out scores (one row per metric with its interval and, for the structure
    metrics, the same metric of the true frames as the floor; with the reference's
    ``structure``, potential energies by its force field, and with ``backmap.minimise``
    every metric again after a restrained minimisation), the fit's losses per epoch
    where it has epochs, and the resolved configuration. A killed fit, rerun, resumes at
    its last finished epoch.
    """
    params = cfg["backmap"]
    backmapper = BACKMAPPERS.get(method)(**params.get(method, {}))
    mapping = read_mapping(mapping_path)
    folds = FoldData.read_all(references, cfg["train"]["n_folds"], fold)
    training = folds.training
    if mapping.n_atoms != training.topology.n_atoms:
        raise InputError(
            f"{mapping_path} maps {mapping.n_atoms} atoms, the references have "
            f"{training.topology.n_atoms}"
        )
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    device = select_device(threads)
    model_path = output_dir / BACKMAPPER_FILE
    blocks = Blocks(
        os.fspath(model_path) + ".checkpoint",
        fingerprint(
            method=method,
            hparams=backmapper.hparams,
            seed=seed,
            fold=fold,
            device=str(device),
            references=[os.fspath(r) for r in references],
        ),
    )
    backmapper.fit(
        training, mapping, seed=seed, device=str(device), checkpoint=folder_checkpoint(blocks)
    )
    labels = folds.data.trajectory_index
    provenance = Provenance(
        stage="backmap-fit",
        config={"fold": fold, "method": method, "seed": seed, **params.get(method, {})},
        inputs=[mapping_path, *references, *([structure] if structure else [])],
        extra={
            "fitted_on_trajectories": np.unique(labels[folds.train_frames]).tolist(),
            "held_out_trajectories": np.unique(labels[folds.heldout_frames]).tolist(),
            "device": str(device),
        },
    )
    # Scored on held-out frames of known answer, spread evenly.
    held_out = folds.held_out
    truth = subset(held_out, evenly(np.arange(held_out.n_frames), params["heldout_frames"]))
    cg = _cg_of(truth, mapping.coordinate_map, mapping.topology)
    scores = heldout_scores(
        backmapper,
        truth,
        cg,
        _standard(folds),
        rng=np.random.default_rng(seed),
        forcefield=_forcefield(structure, cfg, training.topology),
        minimise=_minimise(params),
    )
    scores.insert(0, keys.FOLD, f"fold{fold}")
    scores.insert(1, "backmapper", method)
    scores["control"] = backmapper.control
    scores["unit"] = scores["metric"].map(UNITS)
    records = getattr(backmapper, "records", None)
    if records:
        write_table(output_dir / BACKMAP_LOSSES_FILE, pd.DataFrame(records), provenance)
    write_table(output_dir / BACKMAP_HELDOUT_FILE, scores, provenance)
    save_backmapper(model_path, backmapper, training.topology, provenance)
    blocks.remove()
    write_resolved_config(output_dir, cfg)


def run(
    simulation: str | os.PathLike[str],
    backmapper_path: str | os.PathLike[str],
    references: list[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    fold: int,
    cfg: dict[str, Any],
    structure: str | os.PathLike[str] | None = None,
) -> None:
    """Backmap a CG simulation of ``fold`` with the backmapper fitted for the fold.

    Every ``backmap.stride``-th CG frame, at most ``backmap.max_frames`` of them spread
    evenly, is backmapped (``samples`` structures each, a frame's together). The table has
    one row per structure: replica, sample, cg_rmsd (nm), the method's own columns, the
    structure metrics of :func:`~cgpipe.backmap.scoring.structure_table` against the
    fold's training frames, and phi/psi (rad) of the CG frame and of the atoms where the
    CG frame keeps them; with the reference's ``structure``, each structure's potential
    energy (kJ/mol) by its force field, after the restrained minimisation of
    ``backmap.minimise`` where it is asked for (the structures written are then the
    minimised ones; a negative control's are written as drawn, :func:`heldout_scores`).
    """
    params = cfg["backmap"]
    backmapper, topology = load_backmapper(backmapper_path)
    folds = FoldData.read_all(references, cfg["train"]["n_folds"], fold)
    reference = folds.data
    if topology.n_atoms != reference.topology.n_atoms:
        raise InputError(
            f"{backmapper_path} was fitted on {topology.n_atoms} atoms, the references "
            f"have {reference.topology.n_atoms}"
        )
    cg = read_trajectory(simulation, stride=params["stride"])
    cg = subset(cg, evenly(np.arange(cg.n_frames), params["max_frames"]))
    xi = backmapper.state()["coordinate_map"].numpy()
    if cg.topology.n_atoms != len(xi):
        raise InputError(
            f"{simulation} has {cg.topology.n_atoms} beads, {backmapper_path} maps to {len(xi)}"
        )
    positions, table = backmapper.backmap(cg)
    n = backmapper.samples
    expected = (cg.n_frames * n, reference.topology.n_atoms, 3)
    if positions.shape != expected or len(table) != expected[0]:
        raise ValueError(
            f"backmapper {backmapper.name!r} gave positions {positions.shape} and {len(table)} "
            f"rows for {cg.n_frames} frames x {n} samples, expected {expected}"
        )
    forcefield = _forcefield(structure, cfg, reference.topology)
    minimise = _minimise(params)
    if (
        forcefield is not None
        and minimise is not None
        and len(positions)
        and not backmapper.control
    ):
        positions = forcefield.minimise(positions, **minimise)
    angles = cg_phi_psi(cg)
    repeated = None if angles is None else np.repeat(angles, n, axis=0)
    quality = structure_table(positions, _standard(folds), repeated, forcefield)
    table = pd.concat([table.reset_index(drop=True), quality], axis=1)
    if repeated is not None and len(positions):
        from cgpipe.observables import phi_psi

        atoms = phi_psi(TrajectoryData(reference.topology, positions, np.zeros(len(positions))))
        table[PHI_CG], table[PSI_CG] = repeated[:, 0], repeated[:, 1]
        table[PHI_ATOMS], table[PSI_ATOMS] = atoms[:, 0], atoms[:, 1]
    output_dir = Path(output_dir)
    labels = folds.data.trajectory_index
    provenance = Provenance(
        stage="backmap",
        config={
            "fold": fold,
            "method": backmapper.name,
            "stride": params["stride"],
            "max_frames": params["max_frames"],
            "minimise": params["minimise"],
        },
        inputs=[simulation, backmapper_path, *references, *([structure] if structure else [])],
        extra={
            "fitted_on_trajectories": np.unique(labels[folds.train_frames]).tolist(),
            "held_out_trajectories": np.unique(labels[folds.heldout_frames]).tolist(),
        },
    )
    write_trajectory(
        output_dir / TRAJECTORY_FILE,
        TrajectoryData(
            reference.topology,
            positions,
            np.repeat(cg.time, n),
            trajectory_index=np.repeat(cg.trajectory_index, n),
        ),
        provenance,
    )
    units = {keys.CG_RMSD: "nm", **UNITS}
    units.update({name: "rad" for name in (PHI_CG, PSI_CG, PHI_ATOMS, PSI_ATOMS)})
    write_table(
        output_dir / BACKMAP_TABLE_FILE,
        table,
        provenance,
        units={k: v for k, v in units.items() if k in table.columns},
    )
    write_resolved_config(output_dir, cfg)
