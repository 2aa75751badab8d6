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
from cgpipe.device import select_device
from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_table, write_trajectory
from cgpipe.mapping import read_mapping
from cgpipe.models import load_model, pair_distances
from cgpipe.simulate.langevin import BAOAB
from cgpipe.train.folds import evenly, split_frames

log = logging.getLogger(__name__)


def replica_health(
    positions: torch.Tensor,
    bonds: torch.Tensor,
    max_bond_length: torch.Tensor,
    min_distance: float,
) -> tuple[torch.Tensor, list[str]]:
    """Which replicas [n_replicas] are healthy, and the reason for each that is not."""
    n_replicas, n_beads, _ = positions.shape
    finite = torch.isfinite(positions).all(dim=(1, 2))
    distances = (
        torch.cdist(positions, positions) + torch.eye(n_beads, device=positions.device) * 1e9
    )
    collided = distances.amin(dim=(1, 2)) < min_distance
    stretched = (
        (pair_distances(positions, bonds) > max_bond_length).any(dim=1)
        if len(bonds)
        else torch.zeros_like(collided)
    )
    healthy = finite & ~collided & ~stretched
    reasons = [
        "" if h else ("nan" if not f else "collision" if c else "bond_stretch")
        for h, f, c in zip(healthy.tolist(), finite.tolist(), collided.tolist(), strict=True)
    ]
    return healthy, reasons


def simulate_fold(
    model_path: str | os.PathLike[str],
    cg_path: str | os.PathLike[str],
    mapping_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    fold: int,
    n_folds: int,
    temperature: float,
    params: dict[str, Any],
    seed: int,
    threads: int = 1,
) -> None:
    """Run ``n_replicas`` Langevin replicas from held-out frames of ``fold``.

    Writes ``traj.h5`` (CG trajectory, frames of all replicas back to back, labelled by
    ``trajectory_index`` = replica) and ``health.parquet`` (one row per replica) into
    ``output_dir``.
    """
    device = select_device(threads)
    model = load_model(model_path, device)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    data: TrajectoryData = read_trajectory(cg_path)
    mapping = read_mapping(mapping_path)
    _, held_out = split_frames(data.trajectory_index, n_folds, fold)
    starts = evenly(held_out, params["n_replicas"])
    if len(starts) < params["n_replicas"]:  # fewer held-out frames than replicas: reuse them
        starts = np.resize(starts, params["n_replicas"])

    generator = torch.Generator(device=device).manual_seed(seed)
    masses = torch.as_tensor(mapping.bead_masses, dtype=torch.float32, device=device)
    integrator = BAOAB(
        lambda x: model.energy_and_forces(x)[1],
        masses,
        temperature,
        params["timestep"],
        params["friction"],
        generator,
    )
    bonds = model.prior.bonds
    max_bond_length = params["max_bond_stretch"] * model.prior.bond_r0
    x = torch.as_tensor(data.coordinates[starts], dtype=torch.float32, device=device)
    v = integrator.initial_velocities(x)
    f = model.energy_and_forces(x)[1]
    n_replicas = x.shape[0]
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
        saved_active.append(active.cpu().numpy())
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
        extra={"device": str(device), "start_frames": starts.tolist()},
    )
    health = pd.DataFrame(
        {
            keys.REPLICA: np.arange(n_replicas),
            keys.STABLE: np.isnan(failed_at),
            keys.FAILURE_REASON: reasons,
            keys.TIME_TO_FAILURE: failed_at,
            keys.START_FRAME: starts,
            keys.N_FRAMES: alive.sum(axis=1),
        }
    )
    write_trajectory(output_dir / "traj.h5", trajectory, provenance)
    write_table(
        output_dir / "health.parquet", health, provenance, units={keys.TIME_TO_FAILURE: "ps"}
    )
