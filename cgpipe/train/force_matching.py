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

import numpy as np
import torch

from cgpipe.data import evenly
from cgpipe.epochs import EpochCheckpoint
from cgpipe.errors import InputError
from cgpipe.keys import SPLIT_VALIDATION
from cgpipe.models import EnergyModel, force_rmse
from cgpipe.train.base import TRAINERS, EpochTrainer, FitResult, TrainingData, loss_record

log = logging.getLogger(__name__)


@TRAINERS.register("force_matching")
class ForceMatching(EpochTrainer):
    """Force matching with AdamW, cosine annealing, model selection and early stopping
    (the options: :class:`~cgpipe.train.base.EpochTrainer`)."""

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
            return force_rmse(model, x_valid, f_valid) ** 2

        if not trainable:  # the prior alone: nothing to select, scored once
            model.eval()
            mse = validation_mse() if validating else math.nan
            records = [loss_record(0, SPLIT_VALIDATION, mse)] if validating else []
            return FitResult(records, 0, 0, math.nan, mse)

        x_train = tensor(training.positions)
        f_train = tensor(training.forces)

        def batch_loss(batch: torch.Tensor) -> torch.Tensor:
            _, predicted = model.energy_and_forces(x_train[batch], create_graph=True)
            return ((predicted - f_train[batch]) ** 2).mean()

        return self.run_epochs(
            model,
            len(x_train),
            batch_loss,
            validation_mse if validating else None,
            training=training,
            generator=generator,
            device=device,
            checkpoint=checkpoint,
        )
