"""The simulation stage: replicas of a trained model, started from held-out frames."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cgpipe import keys
from cgpipe.data import FoldData, check_beads, evenly
from cgpipe.device import select_device
from cgpipe.errors import InputError
from cgpipe.io import (
    Provenance,
    TrajectoryWriter,
    read_checkpoint,
    sha256sum,
    trained_temperature,
    write_table,
)
from cgpipe.io.blocks import Blocks, fingerprint
from cgpipe.mapping import read_mapping
from cgpipe.models import load_model
from cgpipe.models.neighbours import neighbour_lists
from cgpipe.observables import States, choose_states
from cgpipe.paths import EXCHANGES_FILE, HEALTH_FILE, TRAJECTORY_FILE
from cgpipe.simulate.base import INTEGRATORS
from cgpipe.simulate.compiled import energy_and_forces
from cgpipe.simulate.health import RANGE_QUANTILES, Health
from cgpipe.simulate.simulation import Simulation, write_frames
from cgpipe.stages import write_resolved_config
from cgpipe.units import thermal_energy

log = logging.getLogger(__name__)


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
    positions, two beads closer than ``simulate.min_distance`` nm, a bond longer than
    ``simulate.max_bond_stretch`` times its mean length in the fold's training frames,
    or a bond or angle outside the training frames' 0.1-99.9 % range for
    ``simulate.bonded_range_window`` ps; :class:`~cgpipe.simulate.health.Health`) is
    stopped, recorded with its time to failure and removed from the batch while the
    others go on. The run records in blocks of ``simulate.checkpoint_interval`` steps
    (:class:`~cgpipe.simulate.simulation.Simulation`): a killed job run again resumes
    after the last block and gives the same trajectory. A model trained at another
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
    x = torch.as_tensor(data.coordinates[starts], dtype=torch.float32, device=device)
    integrator = integrator_class(
        energy_and_forces(model, x, compile=params["compile"], filter_table=params["filter_table"]),
        masses,
        params["timestep"],
        generator,
        **params.get(integrator_name, {}),
    )
    interval = params["save_every"] * params["timestep"]  # ps between saves
    health = Health.for_run(folds.training.coordinates, mapping.bonds, params).to(device)
    kT = torch.full((n_replicas,), thermal_energy(temperature), device=device)
    simulation = Simulation(
        integrator,
        integrator.start(x, kT),
        health,
        save_every=params["save_every"],
        checkpoint_interval=params["checkpoint_interval"],
        cuda_graph=params["cuda_graph"],
        neighbour_lists=neighbour_lists(model),
    )
    output_dir = Path(output_dir)
    blocks = Blocks(
        output_dir / (TRAJECTORY_FILE + ".checkpoint"),
        fingerprint(
            model=sha256sum(model_path),
            cg=sha256sum(cg_path),
            fold=fold,
            seed=seed,
            temperature=temperature,
            simulate=params,
            device=str(device),
        ),
    )
    outcome = simulation.run(params["n_steps"], blocks, desc=f"simulate fold {fold}")
    failed_at = np.where(outcome.stable, np.nan, (outcome.failed_save + 1) * interval)
    for replica in np.flatnonzero(~outcome.stable):
        log.warning(
            "fold %d replica %d failed (%s) at %.1f ps",
            fold,
            replica,
            outcome.reasons[replica],
            failed_at[replica],
        )
    ns_per_day = (
        outcome.n_frames.sum() * interval * 1e-3 / outcome.seconds * 86400.0
        if outcome.seconds > 0
        else float("nan")
    )
    log.info("fold %d: %.0f ns/day aggregate over %d replicas", fold, ns_per_day, n_replicas)
    exchanges = integrator.exchange_table(temperature)
    for row in exchanges:
        log.info(
            "fold %d: exchanges %.0f K <-> %.0f K accepted %.2f of %d",
            fold,
            row["temperature_low"],
            row["temperature_high"],
            row["acceptance"],
            row["attempts"],
        )
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
            "ns_per_day": ns_per_day,
            "exchanges": exchanges,
            "restarts": outcome.restarts,
            "health_ranges": "bonds and angles of the fold's training frames, quantiles "
            f"{RANGE_QUANTILES}",
        },
    )
    health = pd.DataFrame(
        {
            keys.REPLICA: np.arange(n_replicas),
            keys.STABLE: outcome.stable,
            keys.FAILURE_REASON: outcome.reasons,
            keys.TIME_TO_FAILURE: failed_at,
            keys.START_FRAME: starts,
            keys.START_STATE: start_states,
            keys.N_FRAMES: outcome.n_frames,
        }
    )
    with TrajectoryWriter(
        output_dir / TRAJECTORY_FILE, data.topology, provenance, with_forces=False
    ) as writer:
        write_frames(simulation, blocks, writer, interval)
    write_table(output_dir / HEALTH_FILE, health, provenance, units={keys.TIME_TO_FAILURE: "ps"})
    if exchanges:
        write_table(output_dir / EXCHANGES_FILE, pd.DataFrame(exchanges), provenance)
    write_resolved_config(output_dir, cfg)
    blocks.remove()
