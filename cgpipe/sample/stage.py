"""Draw ``sample.n_samples`` independent CG configurations of a fold's trained model.

The trajectory artifact holds every draw as its own trajectory of one frame
(``trajectory_index`` = draw, time 0 ps), so that nothing downstream mistakes the draws
for a time series: the evaluation scores them as it scores a simulation's production,
each draw resampled on its own, with no burn-in, relaxation or start-set check.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cgpipe.data import FoldData, check_beads
from cgpipe.device import select_device
from cgpipe.errors import InputError
from cgpipe.io import Provenance, TrajectoryWriter
from cgpipe.mapping import read_mapping
from cgpipe.models import load_model
from cgpipe.paths import TRAJECTORY_FILE
from cgpipe.simulate.stage import check_temperature
from cgpipe.stages import write_resolved_config

log = logging.getLogger(__name__)


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
    """Write ``traj.h5`` of ``sample.n_samples`` i.i.d. configurations (nm, centred) of the
    model trained on ``fold``.

    Parameters
    ----------
    model_path
        Checkpoint of the model trained on ``fold``; its class must sample i.i.d.
    cg_path
        The CG data (its topology labels the beads of the artifact).
    mapping_path
        The mapping (checked against the CG data's beads).
    output_dir
        Folder for ``traj.h5`` and the resolved configuration.
    fold
        Cross-validation fold of ``train.n_folds``.
    cfg
        The validated configuration (``temperature``, ``train.n_folds``, ``sample``).
    seed
        Seed of the draws.
    threads
        CPU threads for torch.

    Raises
    ------
    InputError
        The model samples only by dynamics, was trained at another temperature, or drew a
        configuration that is not finite.
    """
    params = cfg["sample"]
    check_temperature(model_path, cfg["temperature"])
    device = select_device(threads)
    model = load_model(model_path, device)
    if "iid" not in model.samples:
        raise InputError(
            f"{model_path}: model {model.name!r} samples by {', '.join(model.samples)} only; "
            "the sample stage draws i.i.d. configurations of models that say 'iid'"
        )
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    data = FoldData.read(cg_path, cfg["train"]["n_folds"], fold).data
    mapping = read_mapping(mapping_path)
    check_beads(mapping.n_beads, data, Path(mapping_path), Path(cg_path))
    generator = torch.Generator().manual_seed(seed)
    n_samples = params["n_samples"]
    started = time.perf_counter()
    positions = model.sample(
        n_samples, generator=generator, batch_size=params["batch_size"], steps=params["steps"]
    )
    seconds = time.perf_counter() - started
    positions = positions.detach().cpu().numpy()
    bad = np.flatnonzero(~np.isfinite(positions).all(axis=(1, 2)))
    if len(bad):
        raise InputError(
            f"{model_path}: {len(bad)} of {n_samples} draws are not finite (the first: draw "
            f"{int(bad[0])}); nothing written"
        )
    log.info(
        "fold %d: %d i.i.d. configurations in %.1f s (%.1f per s)",
        fold,
        n_samples,
        seconds,
        n_samples / max(seconds, 1e-9),
    )
    provenance = Provenance(
        stage="sample",
        config={"fold": fold, "temperature": cfg["temperature"], **params},
        inputs=[model_path, cg_path, mapping_path],
        seed=seed,
        extra={
            "device": str(device),
            "method": f"{model.name}.sample",
            "seconds": seconds,
            "labels": "each draw is its own trajectory (trajectory_index = draw) of one frame",
        },
    )
    output_dir = Path(output_dir)
    with TrajectoryWriter(
        output_dir / TRAJECTORY_FILE, data.topology, provenance, with_forces=False
    ) as writer:
        writer.append(positions, np.zeros(n_samples), trajectory_index=np.arange(n_samples))
    write_resolved_config(output_dir, cfg)
