"""Variational force matching (Noid et al. 2008; CGnet, Wang et al. 2019).

Minimises E ||F_theta(z) - Xi_f f(x)||^2 over the training frames, whose minimiser is
the mean force -grad A(z); forces are -dE/dz by autograd, so the loss is differentiated
twice. AdamW with the learning rate cosine-annealed to 1 % of its start over ``epochs``.

After every epoch the force RMSE on evenly spread inner validation frames (trajectories
of the fold's training set that are not fitted on) is recorded; the model keeps the
parameters of the epoch with the lowest validation loss (model selection), and training
stops once ``patience`` epochs in a row have not lowered it (early stopping; the cosine
schedule is then cut short, not rescaled). Without validation frames every epoch runs and
the last is kept. A model with nothing to train (the prior alone) is scored once.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from cgpipe import keys
from cgpipe.data import evenly
from cgpipe.errors import InputError
from cgpipe.keys import SPLIT_TRAIN, SPLIT_VALIDATION
from cgpipe.models import EnergyModel, force_rmse
from cgpipe.train.base import (
    TRAINERS,
    FitResult,
    Trainer,
    TrainingData,
)

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

    def fit(
        self,
        model: EnergyModel,
        training: TrainingData,
        *,
        generator: torch.Generator,
        device: torch.device,
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
        records: list[dict[str, Any]] = []
        train_losses: list[float] = []
        best_epoch, best_loss, best_state = -1, math.inf, None
        epoch = 0
        for epoch in tqdm(
            range(self.epochs), desc=f"fold {training.fold}", file=sys.stderr, mininterval=5
        ):
            model.train()
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
            train_losses.append(float(total) / n_train)
            records.append(_record(epoch, SPLIT_TRAIN, train_losses[-1]))
            if not validating:
                continue
            mse = validation_mse()
            records.append(_record(epoch, SPLIT_VALIDATION, mse))
            log.info(
                "fold %d epoch %d: train rmse %.2f, validation rmse %.2f kJ/mol/nm",
                training.fold,
                epoch,
                math.sqrt(train_losses[-1]),
                math.sqrt(mse),
            )
            if mse < best_loss:  # NaN never improves
                best_epoch, best_loss = epoch, mse
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elif epoch - max(best_epoch, 0) >= self.patience:
                log.info(
                    "fold %d: stopped after epoch %d, %d epochs past the best (%d)",
                    training.fold,
                    epoch,
                    self.patience,
                    best_epoch,
                )
                break
        if best_state is None:  # no validation, or it never was finite: the last epoch
            return FitResult(
                records,
                epoch,
                epoch,
                train_losses[-1],
                best_loss if math.isfinite(best_loss) else math.nan,
            )
        model.load_state_dict(best_state)
        return FitResult(records, best_epoch, epoch, train_losses[best_epoch], best_loss)
