"""The simulation stage: replicas of a trained model, started from held-out frames."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from cgpipe import keys
from cgpipe.data import FoldData, check_beads, evenly
from cgpipe.device import select_device
from cgpipe.errors import InputError
from cgpipe.io import (
    Provenance,
    TrajectoryData,
    read_checkpoint,
    trained_temperature,
    write_table,
    write_trajectory,
)
from cgpipe.mapping import read_mapping
from cgpipe.models import load_model
from cgpipe.observables import States, choose_states
from cgpipe.paths import HEALTH_FILE, TRAJECTORY_FILE
from cgpipe.simulate.base import INTEGRATORS
from cgpipe.stages import write_resolved_config

log = logging.getLogger(__name__)


def replica_health(
    positions: torch.Tensor,
    bonds: torch.Tensor,
    max_bond_length: torch.Tensor,
    min_distance: float,
) -> tuple[torch.Tensor, list[str]]:
    """Which replicas are healthy, and the reason for each that is not.

    Parameters
    ----------
    positions
        [n_replicas, n_beads, 3] in nm.
    bonds
        [n_bonds, 2] bonded bead pairs.
    max_bond_length
        [n_bonds] longest allowed length of each bond in nm.
    min_distance
        Closest allowed approach of any two beads in nm.

    Returns
    -------
    healthy, reasons
        [n_replicas] booleans, and per replica ``""`` (healthy), ``"nan"``,
        ``"collision"`` or ``"bond_stretch"`` (the first that applies).
    """
    n_replicas, n_beads, _ = positions.shape
    finite = torch.isfinite(positions).all(dim=(1, 2))
    distances = (
        torch.cdist(positions, positions) + torch.eye(n_beads, device=positions.device) * 1e9
    )
    collided = distances.amin(dim=(1, 2)) < min_distance
    if len(bonds):
        bond_vectors = positions[:, bonds[:, 1]] - positions[:, bonds[:, 0]]
        bond_lengths = torch.linalg.vector_norm(bond_vectors, dim=-1)
        stretched = (bond_lengths > max_bond_length).any(dim=1)
    else:
        stretched = torch.zeros_like(collided)
    healthy = finite & ~collided & ~stretched
    reasons = [
        "" if h else ("nan" if not f else "collision" if c else "bond_stretch")
        for h, f, c in zip(healthy.tolist(), finite.tolist(), collided.tolist(), strict=True)
    ]
    return healthy, reasons


def start_set(states: States, folds: FoldData, n_replicas: int) -> tuple[np.ndarray, list[str]]:
    """The replicas' start frames: half from the most populated state of the fold's
    training frames, half from the second (frames spread evenly in time within each
    state, reused in turn where a state has fewer than its replicas); all from the one
    state where the training frames visit only one.

    Returns
    -------
    frames, names
        [n_replicas] frame indices into ``folds.data`` and each one's state name.
    """
    training = folds.train_frames
    assigned = states.assign(folds.training)
    counts = np.bincount(assigned, minlength=len(states.names))
    order = [int(k) for k in np.argsort(-counts, kind="stable") if counts[k] > 0][:2]
    sizes = [n_replicas - n_replicas // 2, n_replicas // 2] if len(order) == 2 else [n_replicas]
    frames, names = [], []
    for state, size in zip(order, sizes, strict=True):
        chosen = evenly(training[assigned == state], size)
        frames.append(np.resize(chosen, size))
        names += [states.names[state]] * size
    return np.concatenate(frames), names


def check_temperature(model_path: str | os.PathLike[str], temperature: float) -> None:
    """Refuse a model trained at another temperature than ``temperature`` (K): its
    energies, and its prior's Boltzmann inversion, hold at the temperature it was trained
    at. A checkpoint that records none (written outside the train stage, by an older
    cgpipe) is simulated at ``temperature`` with a warning."""
    trained = trained_temperature(read_checkpoint(model_path))
    if trained is None:
        log.warning(
            "%s records no training temperature; simulating it at temperature %g K",
            model_path,
            temperature,
        )
    elif abs(trained - temperature) > 1e-6:
        raise InputError(
            f"{model_path}: a model trained at {trained:g} K, but the configuration's "
            f"temperature is {temperature:g} K; simulate at {trained:g} K or retrain at "
            f"{temperature:g} K"
        )


def run(
    model_path: str | os.PathLike[str],
    cg_path: str | os.PathLike[str],
    mapping_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    fold: int,
    cfg: dict[str, Any],
    seed: int,
    threads: int = 1,
) -> None:
    """Run ``simulate.n_replicas`` replicas of the model of ``fold`` from a start set.

    The start set (:func:`start_set`) is drawn from the fold's training trajectories,
    half from each of its two most populated states (phi/psi basins, or the sides of
    TIC1 at ``observables.tica_lag``), so that the evaluation can check that the
    replicas forgot where they started; the integrator is
    ``simulate.integrator``, built with its section. A replica that blows up (NaN
    positions, two beads closer than ``simulate.min_distance`` nm, or a bond longer
    than ``simulate.max_bond_stretch`` times its prior length) is stopped and recorded
    with its time to failure while the others go on. A model trained at another
    temperature than ``temperature`` is refused before anything else is read or written
    (:func:`check_temperature`).

    Parameters
    ----------
    model_path
        Checkpoint of the model trained on ``fold``.
    cg_path
        CG trajectories of every trajectory (HDF5), whose training frames start replicas.
    mapping_path
        The mapping (bead masses).
    output_dir
        Folder for the CG trajectory (frames of all replicas back to back, labelled by
        ``trajectory_index`` = replica), the health table (one row per replica) and
        the resolved configuration.
    fold
        Cross-validation fold of ``train.n_folds``.
    cfg
        The validated configuration (``temperature``, ``train.n_folds``, ``simulate``,
        ``observables``).
    seed
        Seed of the integrator's random numbers.
    threads
        CPU threads for torch.
    """
    params = cfg["simulate"]
    n_folds = cfg["train"]["n_folds"]
    temperature = cfg["temperature"]
    check_temperature(model_path, temperature)
    integrator_name = params["integrator"]
    integrator_class = INTEGRATORS.get(integrator_name)
    device = select_device(threads)
    model = load_model(model_path, device)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    folds = FoldData.read(cg_path, n_folds, fold)
    data = folds.data
    mapping = read_mapping(mapping_path)
    check_beads(mapping.n_beads, data, Path(mapping_path), Path(cg_path))
    n_replicas = params["n_replicas"]
    states = choose_states(folds.training, cfg["observables"]["tica_lag"])
    starts, start_states = start_set(states, folds, n_replicas)
    log.info(
        "fold %d: %d replicas from %s",
        fold,
        n_replicas,
        ", ".join(f"{start_states.count(s)} in {s}" for s in dict.fromkeys(start_states)),
    )

    generator = torch.Generator(device=device).manual_seed(seed)
    masses = torch.as_tensor(np.array(mapping.bead_masses), dtype=torch.float32, device=device)
    integrator = integrator_class(
        lambda x: model.energy_and_forces(x)[1],
        masses,
        temperature,
        params["timestep"],
        generator,
        **params.get(integrator_name, {}),
    )
    bonds = model.prior.bonds
    max_bond_length = params["max_bond_stretch"] * model.prior.bond_r0
    x = torch.as_tensor(data.coordinates[starts], dtype=torch.float32, device=device)
    v = integrator.initial_velocities(x)
    f = model.energy_and_forces(x)[1]
    active = torch.ones(n_replicas, dtype=torch.bool, device=device)
    failed_at = np.full(n_replicas, np.nan)
    reasons = [""] * n_replicas
    saved: list[np.ndarray] = []
    saved_active: list[np.ndarray] = []
    n_saves = params["n_steps"] // params["save_every"]
    for save in tqdm(range(n_saves), desc=f"simulate fold {fold}", file=sys.stderr, mininterval=5):
        for _ in range(params["save_every"]):
            x, v, f = integrator.step(x, v, f, active)
        healthy, why = replica_health(x, bonds, max_bond_length, params["min_distance"])
        newly_failed = (active & ~healthy).cpu().numpy()
        for replica in np.flatnonzero(newly_failed):
            failed_at[replica] = (save + 1) * params["save_every"] * params["timestep"]
            reasons[replica] = why[replica]
            log.warning(
                "fold %d replica %d failed (%s) at %.1f ps",
                fold,
                replica,
                why[replica],
                failed_at[replica],
            )
        active &= healthy
        saved.append(x.detach().cpu().numpy())
        # A copy: on CPU, .numpy() shares the mask's memory, which `active &=` rewrites
        # in place (every save would then record the final mask, and a failed replica
        # lose all its frames rather than those after its failure).
        saved_active.append(active.cpu().numpy().copy())
        if not active.any():
            break

    positions = np.stack(saved, axis=1)  # [n_replicas, n_saved, n_beads, 3]
    alive = np.stack(saved_active, axis=1)  # [n_replicas, n_saved]
    time_ps = (np.arange(positions.shape[1]) + 1) * params["save_every"] * params["timestep"]
    replica_of_frame = np.repeat(np.arange(n_replicas), positions.shape[1])
    keep = alive.reshape(-1)
    trajectory = TrajectoryData(
        topology=data.topology,
        coordinates=positions.reshape(-1, mapping.n_beads, 3)[keep],
        time=np.tile(time_ps, n_replicas)[keep],
        trajectory_index=replica_of_frame[keep],
    )
    output_dir = Path(output_dir)
    provenance = Provenance(
        stage="simulate",
        config={"fold": fold, "temperature": temperature, **params},
        inputs=[model_path, cg_path, mapping_path],
        seed=seed,
        extra={
            "device": str(device),
            "start_frames": starts.tolist(),
            "start_states": start_states,
            "start_set": "half from each of the two most populated states of the training frames",
        },
    )
    health = pd.DataFrame(
        {
            keys.REPLICA: np.arange(n_replicas),
            keys.STABLE: np.isnan(failed_at),
            keys.FAILURE_REASON: reasons,
            keys.TIME_TO_FAILURE: failed_at,
            keys.START_FRAME: starts,
            keys.START_STATE: start_states,
            keys.N_FRAMES: alive.sum(axis=1),
        }
    )
    write_trajectory(output_dir / TRAJECTORY_FILE, trajectory, provenance)
    write_table(output_dir / HEALTH_FILE, health, provenance, units={keys.TIME_TO_FAILURE: "ps"})
    write_resolved_config(output_dir, cfg)
