"""The train stage: fit the prior and train one model on one cross-validation fold.

The fold's frames play three parts (:func:`split_validation`):

- **training**: the frames the prior is fitted on and the model is trained on;
- **validation**: inner validation frames from the fold's training trajectories, which the
  trainer scores after every epoch to pick the epoch it keeps and to stop early;
- **held-out**: the fold's held-out trajectories, never given to the prior or the trainer;
  the selected model's force RMSE on them is the final score in ``losses.parquet``.

With ``train.seeds`` > 1 the model is trained that many times from different seeds
(replicates); the one with the lowest validation loss is saved, and every replicate's
validation and held-out RMSE are written, so the spread over seeds is reported.

The fit is saved after every epoch in ``<model file>.checkpoint/`` (the replicates done
so far and the running one's loop state, :mod:`cgpipe.epochs`): a killed job, rerun
with the same inputs, configuration, seed and device, goes on from its last epoch; the
folder is removed once the model is written.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from cgpipe import keys
from cgpipe.data import FoldData, check_beads, evenly
from cgpipe.device import select_device
from cgpipe.epochs import EpochCheckpoint
from cgpipe.errors import InputError
from cgpipe.io import Provenance, sha256sum, write_table
from cgpipe.io.blocks import Blocks, fingerprint
from cgpipe.keys import REPLICATE, SPLIT_HELDOUT
from cgpipe.mapping import read_mapping
from cgpipe.models import MODELS, EnergyModel, fit_prior, save_model
from cgpipe.paths import LOSSES_FILE, MODEL_FILE
from cgpipe.seeds import replicate_seed
from cgpipe.stages import write_resolved_config
from cgpipe.train.base import TRAINERS, FitResult, TrainingData

log = logging.getLogger(__name__)

VALIDATION_TAIL = 0.2
"""Fraction of a fold's only training trajectory validated on: its last frames in time."""


@dataclasses.dataclass(frozen=True)
class ValidationSplit:
    """A fold's training frames split into the frames fitted on and the validation frames.

    Attributes
    ----------
    train_frames
        Frame indices the prior and the model are fitted on.
    validation_frames
        Frame indices of the inner validation set (may be empty).
    trajectories
        Trajectory labels the validation frames come from.
    rule
        ``"trajectories"`` (whole training trajectories held out), ``"tail"`` (the last
        :data:`VALIDATION_TAIL` of the fold's only training trajectory) or ``"none"``.
    """

    train_frames: np.ndarray
    validation_frames: np.ndarray
    trajectories: list[int]
    rule: str

    def describe(self) -> str:
        """One sentence for the provenance."""
        if self.rule == "trajectories":
            return f"trajectories {self.trajectories} of the fold's training set"
        if self.rule == "tail":
            return (
                f"the last {100 * VALIDATION_TAIL:g} % of the frames in time of trajectory "
                f"{self.trajectories[0]}, the fold's only training trajectory (a time block "
                "correlated with the frames trained on: a weaker check than a separate "
                "trajectory)"
            )
        return "none: every epoch runs and the last is kept"


def split_validation(folds: FoldData, n_trajectories: int) -> ValidationSplit:
    """Split a fold's training frames into training and inner validation frames.

    The validation trajectories are the ``n_trajectories`` training trajectories whose
    labels follow the fold's held-out ones in sorted order, wrapping round to the lowest
    (with one trajectory per fold, fold k validates on trajectory k + 1 and the last fold
    on trajectory 0: each trajectory validates once). A fold with a single training
    trajectory has no trajectory to spare: it validates on the last
    :data:`VALIDATION_TAIL` of that trajectory's frames in time and trains on the rest.

    Parameters
    ----------
    folds
        The fold's frames.
    n_trajectories
        ``train.validation_trajectories``; 0: no validation frames.

    Raises
    ------
    InputError
        ``n_trajectories`` leaves no trajectory to train on, or the only training
        trajectory has fewer than 2 frames.
    """
    index = folds.data.trajectory_index
    train = folds.train_frames
    labels = np.unique(index[train])
    if n_trajectories == 0:
        return ValidationSplit(train, train[:0], [], "none")
    if len(labels) == 1:
        frames = train[np.argsort(folds.data.time[train], kind="stable")]
        n_tail = max(1, round(VALIDATION_TAIL * len(frames)))
        if len(frames) - n_tail < 1:
            raise InputError(
                f"fold {folds.fold}: its only training trajectory {labels[0]} has "
                f"{len(frames)} frame(s), too few to split off validation frames"
            )
        return ValidationSplit(
            np.sort(frames[:-n_tail]), np.sort(frames[-n_tail:]), [int(labels[0])], "tail"
        )
    if n_trajectories > len(labels) - 1:
        raise InputError(
            f"train.validation_trajectories={n_trajectories} leaves no trajectory to train on "
            f"in fold {folds.fold}: it has {len(labels)} training trajectories "
            f"{labels.tolist()}; at most {len(labels) - 1}"
        )
    last_held_out = index[folds.heldout_frames].max()
    following = np.concatenate([labels[labels > last_held_out], labels[labels < last_held_out]])
    chosen = np.sort(following[:n_trajectories])
    validation = np.isin(index[train], chosen)
    return ValidationSplit(train[~validation], train[validation], chosen.tolist(), "trajectories")


def _section(cfg: Mapping[str, Any], kind: str, name: str) -> dict[str, Any]:
    try:
        return dict(cfg[kind][name])
    except KeyError:
        raise InputError(f"the configuration has no section {kind}.{name}") from None


def _finite(value: float) -> float | None:
    """A number for the provenance's JSON: ``None`` for NaN (nothing scored)."""
    return value if math.isfinite(value) else None


def _selection_loss(result: FitResult, validating: bool) -> float:
    """What replicates are ranked by: the validation loss, or without validation frames the
    training loss (never the held-out score); NaN ranks last."""
    loss = result.validation_loss if validating else result.train_loss
    return loss if math.isfinite(loss) else math.inf


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
        Folder for the checkpoint (:data:`~cgpipe.paths.MODEL_FILE`, the selected
        replicate), the losses (:data:`~cgpipe.paths.LOSSES_FILE`: replicate, epoch,
        split, loss and rmse in the trainer's units (force matching: (kJ/mol/nm)^2 and
        kJ/mol/nm; denoising: dimensionless), each trainer scoring the held-out frames
        by its own loss; splits ``train`` and
        ``validation`` per epoch, and one ``heldout`` row per replicate at its selected
        epoch) and the resolved configuration.
    model
        A registered model (:data:`cgpipe.models.MODELS`); its section ``models.<model>``
        names its trainer (``trainers.<trainer>``).
    fold
        The cross-validation fold (0 … ``train.n_folds`` - 1).
    cfg
        The validated configuration: ``temperature`` (K), ``train``, ``models`` and
        ``trainers`` are read.
    seed
        Seeds the first replicate's initialisation and trainer generator; the others'
        seeds derive from it (:func:`replicate_seed`).
    threads
        CPU threads for torch.

    Returns
    -------
    EnergyModel
        The selected replicate's trained model, on the CPU.
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
    split = split_validation(folds, train_cfg["validation_trajectories"])
    train_frames = evenly(split.train_frames, train_cfg["max_frames"])
    heldout_frames = folds.heldout_frames
    log.info(
        "fold %d: %d training frames, %d validation frames (%s), %d held-out frames",
        fold,
        len(train_frames),
        len(split.validation_frames),
        split.describe(),
        len(heldout_frames),
    )

    def forces(frames: np.ndarray) -> np.ndarray | None:
        return data.forces[frames] if data.forces is not None else None

    # The prior is fitted on the frames the model is trained on and draws nothing. The
    # order of random draws is part of the result: per replicate, the generator and the
    # global seed first, then the network's initialisation, then the trainer's draws from
    # the generator.
    prior_cfg = {**train_cfg["prior"], **model_class.prior_overrides}
    prior = fit_prior(
        data.coordinates[train_frames], mapping.bonds, cfg["temperature"], **prior_cfg
    )
    training = TrainingData(  # no frame of a held-out trajectory
        positions=data.coordinates[train_frames],
        forces=forces(train_frames),
        validation_positions=data.coordinates[split.validation_frames],
        validation_forces=forces(split.validation_frames),
        fold=fold,
        source=str(cg_path),
    )
    trainer = trainer_class(**trainer_section)
    heldout_positions = torch.as_tensor(
        data.coordinates[heldout_frames], dtype=torch.float32, device=device
    )
    heldout_forces = forces(heldout_frames)
    if heldout_forces is not None:
        heldout_forces = torch.as_tensor(heldout_forces, dtype=torch.float32, device=device)

    output_dir = Path(output_dir)
    blocks = Blocks(
        output_dir / (MODEL_FILE + ".checkpoint"),
        fingerprint(
            cg=sha256sum(cg_path),
            mapping=sha256sum(mapping_path),
            model=model,
            fold=fold,
            seed=seed,
            temperature=cfg["temperature"],
            train=train_cfg,
            section=model_section,
            trainer=trainer_section,
            device=str(device),
        ),
    )
    progress = _load_progress(blocks)
    records: list[dict[str, Any]] = []
    replicates: list[dict[str, Any]] = []
    selected: tuple[float, int, EnergyModel] | None = None
    for replicate in range(train_cfg["seeds"]):
        this_seed = replicate_seed(seed, replicate)
        generator = torch.Generator().manual_seed(this_seed)
        torch.manual_seed(this_seed)
        energy_model = model_class.from_config(
            model_section, bead_types=mapping.bead_types.tolist(), prior=prior
        ).to(device)
        checkpoint = _replicate_checkpoint(blocks, progress, replicate)
        result = trainer.fit(
            energy_model, training, generator=generator, device=device, checkpoint=checkpoint
        )
        energy_model.eval()
        heldout_loss = trainer.score(energy_model, heldout_positions, heldout_forces)
        heldout_rmse = math.sqrt(heldout_loss) if math.isfinite(heldout_loss) else math.nan
        records += [{REPLICATE: replicate, **record} for record in result.records]
        records.append(
            {
                REPLICATE: replicate,
                keys.EPOCH: result.selected_epoch,
                keys.SPLIT: SPLIT_HELDOUT,
                keys.LOSS: heldout_loss,
                keys.RMSE: heldout_rmse,
            }
        )
        replicates.append(
            {
                REPLICATE: replicate,
                "seed": this_seed,
                "selected_epoch": result.selected_epoch,
                "stopped_at_epoch": result.stopped_at_epoch,
                "validation_rmse": _finite(math.sqrt(result.validation_loss)),
                "heldout_rmse": _finite(heldout_rmse),
            }
        )
        log.info(
            "fold %d replicate %d (seed %d): epoch %d kept, validation rmse %.4g, "
            "held-out rmse %.4g (%s)",
            fold,
            replicate,
            this_seed,
            result.selected_epoch,
            math.sqrt(result.validation_loss),
            heldout_rmse,
            "dimensionless" if trainer.rmse_unit == "1" else trainer.rmse_unit,
        )
        rank = _selection_loss(result, len(training.validation_positions) > 0)
        if selected is None or rank < selected[0]:
            selected = (rank, replicate, energy_model.cpu())
        del energy_model
    assert selected is not None  # train.seeds >= 1
    _, kept, energy_model = selected

    labels = data.trajectory_index
    provenance = Provenance(
        stage="train",
        config={
            "model": model,
            "fold": fold,
            "temperature": cfg["temperature"],
            **{key: value for key, value in train_cfg.items() if key != "models"},
            "prior": prior_cfg,
            "models": {model: model_section},
            "trainers": {trainer_name: trainer_section},
        },
        inputs=[cg_path, mapping_path],
        seed=seed,
        extra={
            "device": str(device),
            "train_frames": len(train_frames),
            "validation_frames": len(split.validation_frames),
            "heldout_frames": len(heldout_frames),
            "training_trajectories": np.unique(labels[train_frames]).tolist(),
            "validation_trajectories": split.trajectories,
            "validation": split.describe(),
            "heldout_trajectories": np.unique(labels[heldout_frames]).tolist(),
            "selected_replicate": kept,
            "selected_epoch": replicates[kept]["selected_epoch"],
            "stopped_at_epoch": replicates[kept]["stopped_at_epoch"],
            "replicates": replicates,
            "restarts": progress["restarts"],
        },
    )
    save_model(output_dir / MODEL_FILE, energy_model, provenance, temperature=cfg["temperature"])
    write_table(
        output_dir / LOSSES_FILE,
        pd.DataFrame.from_records(
            records, columns=[REPLICATE, keys.EPOCH, keys.SPLIT, keys.LOSS, keys.RMSE]
        ),
        provenance,
        units={keys.LOSS: trainer.loss_unit, keys.RMSE: trainer.rmse_unit},
    )
    write_resolved_config(output_dir, cfg)
    blocks.remove()
    return energy_model


def _load_progress(blocks: Blocks) -> dict[str, Any]:
    """The saved fit: ``loops`` (each replicate's last loop state, bytes, by replicate)
    and ``restarts`` (how many times it was resumed, this time included)."""
    saved = blocks.load()
    if saved is None:
        blocks.reset()
        return {"loops": {}, "restarts": 0}
    loops = torch.load(io.BytesIO(saved["state"]), weights_only=True)
    log.info("%s: resuming (replicates %s saved)", blocks.folder, sorted(loops))
    return {
        "loops": {int(k): v.numpy().tobytes() for k, v in loops.items()},
        "restarts": int(saved["restarts"]) + 1,
    }


def _replicate_checkpoint(
    blocks: Blocks, progress: dict[str, Any], replicate: int
) -> EpochCheckpoint:
    """The loop checkpoint of ``replicate``: its saved state, if any (a finished
    replicate's last state runs no epoch), and a save that keeps the others'."""

    def load() -> bytes | None:
        return progress["loops"].get(replicate)

    def save(state: bytes) -> None:
        progress["loops"][replicate] = state
        loops = {
            str(k): torch.frombuffer(bytearray(v), dtype=torch.uint8)
            for k, v in progress["loops"].items()
        }
        buffer = io.BytesIO()
        torch.save(loops, buffer)
        blocks.save_state(buffer.getvalue(), n_blocks=0, restarts=progress["restarts"])

    return EpochCheckpoint(load, save)
