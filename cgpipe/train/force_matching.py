"""Variational force matching (Noid et al. 2008; CGnet, Wang et al. 2019).

Minimises E ||F_theta(z) - Xi_f f(x)||^2 over the training frames, whose minimiser is
the mean force -grad A(z); forces are -dE/dz by autograd, so the loss is differentiated
twice. AdamW with the learning rate cosine-annealed to 1 % of its start over ``epochs``.

After every epoch the force RMSE on evenly spread inner validation frames (trajectories
of the fold's training set that are not fitted on) is recorded; the model keeps the
parameters of the epoch with the lowest validation loss (model selection), and training
stops once ``patience`` epochs in a row have not lowered it (early stopping; the cosine
schedule is then cut short, not rescaled). Without validation frames every epoch runs and
the last is kept. A model with nothing to train (the prior alone) is scored once. The
epochs run in :func:`cgpipe.epochs.run_epochs`, which checkpoints after each.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from cgpipe import keys
from cgpipe.data import evenly
from cgpipe.epochs import EpochCheckpoint, EpochScores, run_epochs
from cgpipe.errors import InputError
from cgpipe.keys import SPLIT_TRAIN, SPLIT_VALIDATION
from cgpipe.models import EnergyModel, force_rmse
from cgpipe.train.base import TRAINERS, FitResult, Trainer, TrainingData

log = logging.getLogger(__name__)


def _record(epoch: int, split: str, mse: float) -> dict[str, Any]:
    return {keys.EPOCH: epoch, keys.SPLIT: split, keys.LOSS: mse, keys.RMSE: math.sqrt(mse)}


@TRAINERS.register("force_matching")
class ForceMatching(Trainer):
    """Force matching with AdamW, cosine annealing, model selection and early stopping.

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

    def score(
        self, model: EnergyModel, positions: torch.Tensor, forces: torch.Tensor | None
    ) -> float:
        """Mean squared force error (kJ/mol/nm)^2; NaN without forces or frames."""
        if forces is None or len(positions) == 0:
            return math.nan
        return force_rmse(model, positions, forces) ** 2

    def fit(
        self,
        model: EnergyModel,
        training: TrainingData,
        *,
        generator: torch.Generator,
        device: torch.device,
        checkpoint: EpochCheckpoint | None = None,
    ) -> FitResult:
        trainable = [p for p in model.parameters() if p.requires_grad]
        if training.forces is None and trainable:
            raise InputError(
                f"{training.source}: no forces (positions-only data); {model.name} is trained "
                "by force matching and needs them"
            )

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(array, dtype=torch.float32, device=device)

        validating = training.validating
        scored = evenly(np.arange(len(training.validation_positions)), self.validation_frames)
        log.info("fold %d: %d validation frames scored", training.fold, len(scored))
        if validating:
            x_valid = tensor(training.validation_positions[scored])
            f_valid = tensor(training.validation_forces[scored])

        def validation_mse() -> float:
            return force_rmse(model, x_valid, f_valid) ** 2 if validating else math.nan

        if not trainable:  # the prior alone: nothing to select, scored once
            model.eval()
            mse = validation_mse()
            records = [_record(0, SPLIT_VALIDATION, mse)] if validating else []
            return FitResult(records, 0, 0, math.nan, mse)

        x_train = tensor(training.positions)
        f_train = tensor(training.forces)
        n_train = len(x_train)
        optimizer = torch.optim.AdamW(
            trainable, lr=self.learning_rate, weight_decay=self.weight_decay
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
                _, predicted = model.energy_and_forces(x_train[batch], create_graph=True)
                loss = ((predicted - f_train[batch]) ** 2).mean()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += loss.detach() * len(batch)
            model.eval()
            train_mse = float(total) / n_train
            records = [_record(epoch, SPLIT_TRAIN, train_mse)]
            mse = validation_mse()
            if validating:
                records.append(_record(epoch, SPLIT_VALIDATION, mse))
                log.info(
                    "fold %d epoch %d: train rmse %.2f, validation rmse %.2f kJ/mol/nm",
                    training.fold,
                    epoch,
                    math.sqrt(train_mse),
                    math.sqrt(mse),
                )
            return EpochScores(records, train_mse, mse)

        outcome = run_epochs(
            self.epochs,
            epoch_step,
            model=model,
            stateful={"optimizer": optimizer, "scheduler": scheduler},
            generator=generator,
            patience=self.patience if validating else None,
            desc=f"fold {training.fold}",
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
