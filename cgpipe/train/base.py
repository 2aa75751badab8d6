"""The trainer interface: how a model's parameters are fitted to one fold's training data.

A trainer is a class in a module of this package that subclasses :class:`Trainer` and
registers itself in :data:`TRAINERS`; its constructor takes its config section
(``trainers.<name>``) as keyword arguments. A model's section names its trainer
(``models.<model>.trainer``).

A trainer sees a fold's training trajectories only, split into the frames it fits on and
the inner validation frames it selects the model with (:class:`TrainingData`); the fold's
held-out trajectories never reach it, they are scored afterwards by
:func:`cgpipe.train.run`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch

from cgpipe import keys
from cgpipe.epochs import EpochCheckpoint, EpochScores, run_epochs
from cgpipe.keys import SPLIT_TRAIN, SPLIT_VALIDATION
from cgpipe.models import EnergyModel
from cgpipe.registry import Registry

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What a trainer sees of one fold: the CG frames of its training trajectories only.

    A trainer fits on ``positions``/``forces`` and may score the validation frames to pick
    an epoch and to stop early; the fold's held-out trajectories are not here.

    Attributes
    ----------
    positions
        [n_train, n_beads, 3] positions the model is fitted on, nm.
    forces
        [n_train, n_beads, 3] projected CG forces, kJ/mol/nm, or ``None`` for
        positions-only data.
    validation_positions
        [n_validation, n_beads, 3] positions of the inner validation frames, nm
        (``n_validation`` may be 0: no validation).
    validation_forces
        [n_validation, n_beads, 3] kJ/mol/nm, or ``None`` for positions-only data.
    fold
        The cross-validation fold.
    source
        Where the frames came from (for messages).
    """

    positions: np.ndarray
    forces: np.ndarray | None
    validation_positions: np.ndarray
    validation_forces: np.ndarray | None
    fold: int
    source: str = ""

    def __post_init__(self) -> None:
        shape = self.positions.shape
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"positions must be [n_frames, n_beads, 3], got {shape}")
        if self.validation_positions.shape[1:] != shape[1:]:
            raise ValueError(
                f"validation positions {self.validation_positions.shape} do not match the "
                f"training positions {shape}"
            )
        for name, forces, positions in (
            ("forces", self.forces, self.positions),
            ("validation_forces", self.validation_forces, self.validation_positions),
        ):
            if forces is not None and forces.shape != positions.shape:
                raise ValueError(
                    f"{name} {forces.shape} do not match their positions {positions.shape}"
                )

    @property
    def validating(self) -> bool:
        """Whether there are validation frames with forces to score."""
        return len(self.validation_positions) > 0 and self.validation_forces is not None


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What :meth:`Trainer.fit` reports; the model holds the selected epoch's state.

    Attributes
    ----------
    records
        Loss records, one per epoch and split: :data:`cgpipe.keys.EPOCH`,
        :data:`~cgpipe.keys.SPLIT` (:data:`SPLIT_TRAIN`, :data:`SPLIT_VALIDATION`),
        :data:`~cgpipe.keys.LOSS` ((kJ/mol/nm)^2) and :data:`~cgpipe.keys.RMSE` (force
        RMSE, kJ/mol/nm).
    selected_epoch
        The epoch whose parameters the model holds on return (the lowest validation loss;
        the last epoch without validation frames).
    stopped_at_epoch
        The last epoch run (before ``epochs - 1`` where training stopped early).
    train_loss
        Mean squared force error on the training frames in the selected epoch,
        (kJ/mol/nm)^2; NaN where nothing was trained.
    validation_loss
        Mean squared force error on the validation frames after the selected epoch,
        (kJ/mol/nm)^2; NaN without validation frames.
    resumed_at_epoch
        The epoch a killed fit went on from (its checkpoint's); ``None``: not resumed.
    """

    records: list[dict[str, Any]]
    selected_epoch: int
    stopped_at_epoch: int
    train_loss: float
    validation_loss: float
    resumed_at_epoch: int | None = None


class Trainer:
    """Fits a model to one fold's training frames.

    Subclasses take their config section as keyword arguments and implement :meth:`fit`.
    One trainer may fit several models in turn (the replicates of ``train.seeds``), so
    :meth:`fit` keeps no state between calls.

    Attributes
    ----------
    name
        The registered name (set by :meth:`Registry.register`).
    """

    name: ClassVar[str] = ""
    loss_unit: ClassVar[str] = "(kJ/mol/nm)^2"
    """The unit of the loss it records (the loss table's ``loss`` column)."""
    rmse_unit: ClassVar[str] = "kJ/mol/nm"
    """The unit of the loss's square root (the ``rmse`` column)."""

    def score(
        self, model: EnergyModel, positions: torch.Tensor, forces: torch.Tensor | None
    ) -> float:
        """The trainer's loss of ``model`` on frames it never saw (the fold's held-out
        frames): positions [n_frames, n_beads, 3] (nm) and forces (kJ/mol/nm, or
        ``None``) on the model's device; NaN where it cannot be scored."""
        raise NotImplementedError(f"{type(self).__qualname__} does not define score()")

    def fit(
        self,
        model: EnergyModel,
        training: TrainingData,
        *,
        generator: torch.Generator,
        device: torch.device,
        checkpoint: EpochCheckpoint | None = None,
    ) -> FitResult:
        """Train ``model`` (already on ``device``) in place; leave it in its selected state.

        Parameters
        ----------
        model
            The model, built on the fold's prior.
        training
            The fold's training frames and inner validation frames.
        generator
            The CPU generator for every random draw of the training (batch order, ...).
        device
            Where the model lives and the work runs.
        checkpoint
            Where to save the fit's state after every epoch and resume it from
            (:func:`cgpipe.epochs.run_epochs`); ``None``: no checkpoints.

        Returns
        -------
        FitResult
            The loss records and the selected epoch.

        Raises
        ------
        InputError
            The data cannot train this model (positions-only data for force matching).
        """
        raise NotImplementedError(f"{type(self).__qualname__} does not define fit()")


def loss_record(epoch: int, split: str, loss: float) -> dict[str, Any]:
    """A row of the loss table: epoch, split, loss and its square root."""
    return {keys.EPOCH: epoch, keys.SPLIT: split, keys.LOSS: loss, keys.RMSE: math.sqrt(loss)}


class EpochTrainer(Trainer):
    """A trainer of epochs of AdamW steps on shuffled batches, the learning rate
    cosine-annealed to 1 % of its start over ``epochs``, with model selection on the
    validation frames and early stopping (:func:`cgpipe.epochs.run_epochs`, which also
    checkpoints every epoch). A subclass gives the loss of a batch and the scoring of the
    validation frames.

    Parameters
    ----------
    epochs
        At most this many passes over the training frames.
    batch_size
        Frames per optimisation step.
    learning_rate
        Initial AdamW learning rate; annealed to 1 % of it over ``epochs``.
    weight_decay
        AdamW weight decay.
    validation_frames
        At most this many validation frames, spread evenly, are scored after every epoch.
    patience
        Stop after this many epochs in a row without a lower validation loss (strictly
        lower; ``patience >= epochs`` never stops early).
    """

    def __init__(
        self,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        weight_decay: float,
        validation_frames: int,
        patience: int,
    ) -> None:
        if min(epochs, batch_size, validation_frames, patience) < 1:
            raise ValueError("epochs, batch_size, validation_frames and patience must be positive")
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.validation_frames = int(validation_frames)
        self.patience = int(patience)

    def run_epochs(
        self,
        model: EnergyModel,
        n_train: int,
        batch_loss: Callable[[torch.Tensor], torch.Tensor],
        validation_loss: Callable[[], float] | None,
        *,
        training: TrainingData,
        generator: torch.Generator,
        device: torch.device,
        checkpoint: EpochCheckpoint | None,
    ) -> FitResult:
        """Train ``model``'s trainable parameters on ``n_train`` frames: each epoch draws
        their order from ``generator``, steps on ``batch_loss(frame indices)`` batch by
        batch, then scores ``validation_loss()`` in evaluation mode (``None``: no
        validation frames)."""
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad],
            lr=self.learning_rate,
            weight_decay=self.weight_decay,
        )
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=self.epochs * steps_per_epoch, eta_min=0.01 * self.learning_rate
        )

        def epoch_step(epoch: int) -> EpochScores:
            order = torch.randperm(n_train, generator=generator).to(device)
            total = torch.zeros((), device=device)  # summed on the device: no sync per step
            for start in range(0, n_train, self.batch_size):
                batch = order[start : start + self.batch_size]
                loss = batch_loss(batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += loss.detach() * len(batch)
            model.eval()
            train_loss = float(total) / n_train
            records = [loss_record(epoch, SPLIT_TRAIN, train_loss)]
            if validation_loss is None:
                return EpochScores(records, train_loss)
            selection = validation_loss()
            records.append(loss_record(epoch, SPLIT_VALIDATION, selection))
            return EpochScores(records, train_loss, selection)

        outcome = run_epochs(
            self.epochs,
            epoch_step,
            model=model,
            stateful={"optimizer": optimizer, "scheduler": scheduler},
            generator=generator,
            patience=self.patience if validation_loss is not None else None,
            desc=f"fold {training.fold}",
            unit=self.loss_unit,
            checkpoint=checkpoint,
        )
        if outcome.stopped_at_epoch < self.epochs - 1:
            log.info(
                "fold %d: stopped after epoch %d, %d epochs past the best (%d)",
                training.fold,
                outcome.stopped_at_epoch,
                self.patience,
                outcome.selected_epoch,
            )
        return FitResult(
            outcome.records,
            outcome.selected_epoch,
            outcome.stopped_at_epoch,
            outcome.train_loss,
            outcome.selection_loss,
            resumed_at_epoch=outcome.resumed_at_epoch,
        )


TRAINERS: Registry[type[Trainer]] = Registry("trainer", "cgpipe.train")
