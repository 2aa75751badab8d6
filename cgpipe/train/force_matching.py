"""The force-matching training loop for one fold."""

from __future__ import annotations

import logging
import math
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
from cgpipe.errors import InputError
from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_table
from cgpipe.mapping import read_mapping
from cgpipe.models import CGModel, build_model, fit_prior, save_model
from cgpipe.train.folds import evenly, split_frames

log = logging.getLogger(__name__)

_HELDOUT_FRAMES = 2000  # frames of the held-out fold scored after every epoch


def force_rmse(
    model: CGModel, positions: torch.Tensor, forces: torch.Tensor, batch_size: int = 512
) -> float:
    """Root-mean-square error (kJ/mol/nm) per force component over frames."""
    squared, count = 0.0, 0
    for start in range(0, len(positions), batch_size):
        _, predicted = model.energy_and_forces(positions[start : start + batch_size])
        squared += float(((predicted - forces[start : start + batch_size]) ** 2).sum())
        count += predicted.numel()
    return math.sqrt(squared / max(count, 1))


def train_fold(
    cg_path: str | os.PathLike[str],
    mapping_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    model_name: str,
    fold: int,
    temperature: float,
    params: dict[str, Any],
    seed: int,
    threads: int = 1,
) -> CGModel:
    """Fit the prior and train ``model_name`` on the training trajectories of ``fold``.

    Writes ``model.pt`` and ``losses.parquet`` (epoch, split, loss in (kJ/mol/nm)^2,
    rmse in kJ/mol/nm) into ``output_dir``.
    """
    device = select_device(threads)
    data: TrajectoryData = read_trajectory(cg_path)
    mapping = read_mapping(mapping_path)
    if mapping.n_beads != data.topology.n_atoms:
        raise InputError(
            f"{mapping_path} has {mapping.n_beads} beads but {cg_path} has {data.topology.n_atoms}"
        )
    train_frames, test_frames = split_frames(data.trajectory_index, params["n_folds"], fold)
    train_frames = evenly(train_frames, params["max_frames"])
    test_frames = evenly(test_frames, _HELDOUT_FRAMES)
    log.info(
        "fold %d: %d training frames, %d held-out frames", fold, len(train_frames), len(test_frames)
    )

    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    prior = fit_prior(
        data.coordinates[train_frames],
        mapping.bonds,
        temperature,
        **params["prior"],
    )
    model = build_model(model_name, mapping.bead_types.tolist(), prior, params["cgschnet"]).to(
        device
    )

    trainable = [p for p in model.parameters() if p.requires_grad]
    if data.forces is None and trainable:
        raise InputError(
            f"{cg_path}: no forces (positions-only data); {model_name} is trained by force "
            "matching and needs them"
        )

    def tensor(array: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(array, dtype=torch.float32, device=device)

    x_train = tensor(data.coordinates[train_frames])
    x_test = tensor(data.coordinates[test_frames])
    f_train = tensor(data.forces[train_frames]) if data.forces is not None else None
    f_test = tensor(data.forces[test_frames]) if data.forces is not None else None
    records: list[dict[str, Any]] = []
    epochs = params["epochs"] if trainable else 0
    if trainable:
        optimizer = torch.optim.AdamW(
            trainable, lr=params["learning_rate"], weight_decay=params["weight_decay"]
        )
        steps_per_epoch = math.ceil(len(train_frames) / params["batch_size"])
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=epochs * steps_per_epoch, eta_min=0.01 * params["learning_rate"]
        )
    for epoch in tqdm(range(epochs), desc=f"fold {fold}", file=sys.stderr, mininterval=5):
        model.train()
        order = torch.randperm(len(train_frames), generator=generator).to(device)
        total = torch.zeros((), device=device)  # summed on the device: no sync per step
        count = 0
        for start in range(0, len(order), params["batch_size"]):
            batch = order[start : start + params["batch_size"]]
            _, predicted = model.energy_and_forces(x_train[batch], create_graph=True)
            loss = ((predicted - f_train[batch]) ** 2).mean()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += loss.detach() * len(batch)
            count += len(batch)
        model.eval()
        train_mse = float(total) / count
        test_rmse = force_rmse(model, x_test, f_test)
        records += [
            {
                keys.EPOCH: epoch,
                keys.SPLIT: "train",
                keys.LOSS: train_mse,
                keys.RMSE: math.sqrt(train_mse),
            },
            {
                keys.EPOCH: epoch,
                keys.SPLIT: "heldout",
                keys.LOSS: test_rmse**2,
                keys.RMSE: test_rmse,
            },
        ]
        log.info(
            "fold %d epoch %d: train rmse %.2f, held-out rmse %.2f kJ/mol/nm",
            fold,
            epoch,
            math.sqrt(train_mse),
            test_rmse,
        )
    if not records:  # a model with nothing to train (the prior alone) is scored once
        test_rmse = force_rmse(model, x_test, f_test) if f_test is not None else float("nan")
        records.append(
            {keys.EPOCH: 0, keys.SPLIT: "heldout", keys.LOSS: test_rmse**2, keys.RMSE: test_rmse}
        )

    output_dir = Path(output_dir)
    provenance = Provenance(
        stage="train",
        config={"model": model_name, "fold": fold, "temperature": temperature, **params},
        inputs=[cg_path, mapping_path],
        seed=seed,
        extra={
            "device": str(device),
            "train_frames": len(train_frames),
            "heldout_frames": len(test_frames),
        },
    )
    save_model(output_dir / "model.pt", model.cpu(), provenance)
    write_table(
        output_dir / "losses.parquet",
        pd.DataFrame.from_records(records),
        provenance,
        units={keys.LOSS: "(kJ/mol/nm)^2", keys.RMSE: "kJ/mol/nm"},
    )
    return model
