"""Denoising score matching (Vincent 2011; Ho et al. 2020) for the diffusion model
(:mod:`cgpipe.models.diffusion`), on positions alone.

Each optimisation step draws, per frame, a diffusion step t uniformly from 1 … T and
centred standard-normal noise eps, noises the scaled frame, y_t = sqrt(abar_t) y_0 +
sigma_t eps, and minimises the weighted mean of |eps_hat(y_t, t) - eps|^2 / (3 (n_beads -
1)) (1 for a model that predicts no noise; the noise's degrees of freedom are those of
zero centre). Steps below ``low_noise_steps`` weigh ``low_noise_weight`` times as much:
the force field is read at a low step. The energy network's noise is a gradient, so the
loss is differentiated twice.

The loss is scored after every epoch on the inner validation frames with draws fixed
once (the same t and eps every epoch, t spread evenly over 1 … T), so that epochs are
compared on the same problem; model selection, early stopping, the schedule (AdamW, the
learning rate cosine-annealed to 1 %) and the checkpoints are those of force matching
(:func:`cgpipe.epochs.run_epochs`). Held-out frames are scored the same way.

Rotations are not augmented: the energy is a function of distances, so a rotated frame
gives the same loss for the same noise rotated, which is as likely.
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
from cgpipe.models import EnergyModel
from cgpipe.train.base import TRAINERS, FitResult, Trainer, TrainingData

log = logging.getLogger(__name__)

SCORE_SEED = 20231012
"""Seed of the fixed draws (t, eps) that validation and held-out frames are scored with."""


def _record(epoch: int, split: str, loss: float) -> dict[str, Any]:
    return {keys.EPOCH: epoch, keys.SPLIT: split, keys.LOSS: loss, keys.RMSE: math.sqrt(loss)}


@TRAINERS.register("denoising")
class Denoising(Trainer):
    """Denoising score matching with AdamW, cosine annealing, model selection and early
    stopping.

    Parameters
    ----------
    epochs, batch_size, learning_rate, weight_decay, validation_frames, patience
        As for force matching.
    low_noise_steps
        Diffusion steps below this weigh ``low_noise_weight`` times the others.
    low_noise_weight
        Their weight.
    """

    loss_unit = "1"
    rmse_unit = "1"

    def __init__(
        self,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        weight_decay: float,
        validation_frames: int,
        patience: int,
        low_noise_steps: int,
        low_noise_weight: float,
    ) -> None:
        if min(epochs, batch_size, validation_frames, patience) < 1:
            raise ValueError("epochs, batch_size, validation_frames and patience must be positive")
        if low_noise_steps < 0 or low_noise_weight <= 0:
            raise ValueError("low_noise_steps must be >= 0 and low_noise_weight positive")
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.validation_frames = int(validation_frames)
        self.patience = int(patience)
        self.low_noise_steps = int(low_noise_steps)
        self.low_noise_weight = float(low_noise_weight)

    @staticmethod
    def _diffusion(model: EnergyModel) -> Any:
        if not hasattr(model, "predicted_noise"):
            raise InputError(
                f"model {model.name!r} is not a diffusion model: the denoising trainer "
                "needs one that predicts noise"
            )
        return model

    def loss(
        self,
        model: EnergyModel,
        y0: torch.Tensor,
        t: torch.Tensor,
        eps: torch.Tensor,
        create_graph: bool = False,
    ) -> torch.Tensor:
        """The weighted denoising loss of scaled, centred frames ``y0`` noised to steps
        ``t`` with noise ``eps`` (a scalar)."""
        abar = model.abar[t].view(-1, 1, 1)
        y = abar.sqrt() * y0 + (1 - abar).sqrt() * eps
        predicted = model.predicted_noise(y, t, create_graph=create_graph)
        dof = 3 * (y0.shape[1] - 1)
        per_frame = ((predicted - eps) ** 2).sum(dim=(1, 2)) / max(dof, 1)
        weight = torch.where(t < self.low_noise_steps, self.low_noise_weight, 1.0)
        return (weight * per_frame).sum() / weight.sum()

    def fixed_draws(
        self, model: EnergyModel, n_frames: int, like: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(t, eps) for scoring ``n_frames`` frames: t spread evenly over 1 … T, eps from
        a generator of its own, the same at every call."""
        from cgpipe.models.diffusion import centred_noise

        generator = torch.Generator().manual_seed(SCORE_SEED)
        t = 1 + (torch.arange(n_frames) * model.steps) // max(n_frames, 1)
        eps = centred_noise((n_frames, model.n_beads, 3), generator, like)
        return t.to(like.device), eps

    def score(
        self, model: EnergyModel, positions: torch.Tensor, forces: torch.Tensor | None
    ) -> float:
        """The denoising loss of ``positions`` (nm) with the fixed draws; NaN for none."""
        model = self._diffusion(model)
        if len(positions) == 0:
            return math.nan
        y0 = (positions - positions.mean(dim=1, keepdim=True)) / model.scale
        t, eps = self.fixed_draws(model, len(y0), y0)
        total, weight = 0.0, 0.0
        for start in range(0, len(y0), 512):
            part = slice(start, start + 512)
            w = torch.where(t[part] < self.low_noise_steps, self.low_noise_weight, 1.0).sum()
            total += float(self.loss(model, y0[part], t[part], eps[part]).detach()) * float(w)
            weight += float(w)
        return total / weight

    def fit(
        self,
        model: EnergyModel,
        training: TrainingData,
        *,
        generator: torch.Generator,
        device: torch.device,
        checkpoint: EpochCheckpoint | None = None,
    ) -> FitResult:
        from cgpipe.models.diffusion import centred_noise

        model = self._diffusion(model)

        def centred(array: np.ndarray) -> torch.Tensor:
            x = torch.as_tensor(array, dtype=torch.float32, device=device)
            return x - x.mean(dim=1, keepdim=True)

        x_train = centred(training.positions)
        # The scale: the RMS of the centred training coordinates (nm).
        model.scale.fill_(float(x_train.pow(2).mean().sqrt()))
        y_train = x_train / model.scale
        scored = evenly(np.arange(len(training.validation_positions)), self.validation_frames)
        validating = len(scored) > 0
        x_valid = centred(training.validation_positions[scored])
        log.info("fold %d: %d validation frames scored", training.fold, len(scored))
        n_train = len(y_train)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        steps_per_epoch = math.ceil(n_train / self.batch_size)
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=self.epochs * steps_per_epoch, eta_min=0.01 * self.learning_rate
        )

        def epoch_step(epoch: int) -> EpochScores:
            order = torch.randperm(n_train, generator=generator).to(device)
            total = torch.zeros((), device=device)
            for start in range(0, n_train, self.batch_size):
                batch = order[start : start + self.batch_size]
                t = torch.randint(1, model.steps + 1, (len(batch),), generator=generator)
                eps = centred_noise((len(batch), model.n_beads, 3), generator, y_train)
                loss = self.loss(model, y_train[batch], t.to(device), eps, create_graph=True)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                total += loss.detach() * len(batch)
            model.eval()
            train_loss = float(total) / n_train
            records = [_record(epoch, SPLIT_TRAIN, train_loss)]
            validation = self.score(model, x_valid, None) if validating else math.nan
            if validating:
                records.append(_record(epoch, SPLIT_VALIDATION, validation))
                log.info(
                    "fold %d epoch %d: denoising loss %.4f, validation %.4f",
                    training.fold,
                    epoch,
                    train_loss,
                    validation,
                )
            return EpochScores(records, train_loss, validation)

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
        return FitResult(
            outcome.records,
            outcome.selected_epoch,
            outcome.stopped_at_epoch,
            outcome.train_loss,
            outcome.selection_loss,
            resumed_at_epoch=outcome.resumed_at_epoch,
        )
