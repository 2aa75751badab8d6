"""The train stage: fit the prior and train one model on one cross-validation fold."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from cgpipe import keys
from cgpipe.data import FoldData, check_beads, evenly
from cgpipe.device import select_device
from cgpipe.errors import InputError
from cgpipe.io import Provenance, write_table
from cgpipe.mapping import read_mapping
from cgpipe.models import MODELS, EnergyModel, fit_prior, save_model
from cgpipe.paths import LOSSES_FILE, MODEL_FILE
from cgpipe.stages import write_resolved_config
from cgpipe.train.base import TRAINERS, TrainingData

log = logging.getLogger(__name__)


def _section(cfg: Mapping[str, Any], kind: str, name: str) -> dict[str, Any]:
    try:
        return dict(cfg[kind][name])
    except KeyError:
        raise InputError(f"the configuration has no section {kind}.{name}") from None


def run(
    cg_path: str | os.PathLike[str],
    mapping_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    *,
    model: str,
    fold: int,
    cfg: Mapping[str, Any],
    seed: int,
    threads: int = 1,
) -> EnergyModel:
    """Fit the prior and train ``model`` on the training trajectories of ``fold``.

    Parameters
    ----------
    cg_path
        CG trajectory file (positions in nm, forces in kJ/mol/nm) of every trajectory.
    mapping_path
        The mapping artifact (bead types, bonds).
    output_dir
        Folder for the checkpoint (:data:`~cgpipe.paths.MODEL_FILE`), the losses
        (:data:`~cgpipe.paths.LOSSES_FILE`: epoch, split, loss in (kJ/mol/nm)^2, rmse in
        kJ/mol/nm) and the resolved configuration.
    model
        A registered model (:data:`cgpipe.models.MODELS`); its section ``models.<model>``
        names its trainer (``trainers.<trainer>``).
    fold
        The cross-validation fold (0 … ``train.n_folds`` - 1).
    cfg
        The validated configuration: ``temperature`` (K), ``train``, ``models`` and
        ``trainers`` are read.
    seed
        Seeds the model's initialisation and the trainer's generator.
    threads
        CPU threads for torch.

    Returns
    -------
    EnergyModel
        The trained model, on the CPU.
    """
    model_section = _section(cfg, "models", model)
    model_class = MODELS.get(model)
    trainer_name = model_section.get("trainer")
    if trainer_name is None:
        raise InputError(f"the configuration's section models.{model} names no trainer")
    trainer_section = _section(cfg, "trainers", trainer_name)
    trainer_class = TRAINERS.get(trainer_name)
    train_cfg = cfg["train"]

    device = select_device(threads)
    folds = FoldData.read(cg_path, train_cfg["n_folds"], fold)
    mapping = read_mapping(mapping_path)
    check_beads(mapping.n_beads, folds.data, Path(mapping_path), Path(cg_path))
    data = folds.data
    train_frames = evenly(folds.train_frames, train_cfg["max_frames"])
    heldout_frames = folds.heldout_frames
    log.info(
        "fold %d: %d training frames, %d held-out frames",
        fold,
        len(train_frames),
        len(heldout_frames),
    )

    # The order of random draws is part of the result: the generator and the global seed
    # first, then the network's initialisation (the prior fit draws nothing), then the
    # trainer's draws from the generator.
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    prior = fit_prior(
        data.coordinates[train_frames], mapping.bonds, cfg["temperature"], **train_cfg["prior"]
    )
    energy_model = model_class.from_config(
        model_section, bead_types=mapping.bead_types.tolist(), prior=prior
    ).to(device)
    trainer = trainer_class(**trainer_section)
    training = TrainingData(
        positions=data.coordinates[train_frames],
        forces=data.forces[train_frames] if data.forces is not None else None,
        heldout_positions=data.coordinates[heldout_frames],
        heldout_forces=data.forces[heldout_frames] if data.forces is not None else None,
        fold=fold,
        source=str(cg_path),
    )
    records = trainer.fit(energy_model, training, generator=generator, device=device)

    output_dir = Path(output_dir)
    provenance = Provenance(
        stage="train",
        config={
            "model": model,
            "fold": fold,
            "temperature": cfg["temperature"],
            **{key: value for key, value in train_cfg.items() if key != "models"},
            "models": {model: model_section},
            "trainers": {trainer_name: trainer_section},
        },
        inputs=[cg_path, mapping_path],
        seed=seed,
        extra={
            "device": str(device),
            "train_frames": len(train_frames),
            "heldout_frames": len(heldout_frames),
        },
    )
    energy_model = energy_model.cpu()
    save_model(output_dir / MODEL_FILE, energy_model, provenance)
    write_table(
        output_dir / LOSSES_FILE,
        pd.DataFrame.from_records(records),
        provenance,
        units={keys.LOSS: "(kJ/mol/nm)^2", keys.RMSE: "kJ/mol/nm"},
    )
    write_resolved_config(output_dir, cfg)
    return energy_model
