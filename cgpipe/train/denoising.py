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

With the model's ``fokker_planck_weight`` w > 0, each step adds w times the Fokker-Planck
penalty (:meth:`Denoising.fokker_planck_penalty`): the first :data:`FOKKER_PLANCK_FRAMES`
frames of the batch noised to one continuous time tau drawn uniformly over the low-noise
steps (1 … ``low_noise_steps``, where the force field is read), and the variance over them
of r(y, tau) sigma^2(tau) / beta(tau) per degree of freedom (r is a function of tau alone
for a consistent family of densities). The factor keeps the penalty of order one at every
tau: the residual's terms are of order beta / v per degree of freedom, v the density's
variance along it, which for a molecule's stiff bonds is as small as sigma^2 at low noise
(divided by beta alone, the default ala2 model's penalty at 1e-3 was 10^4 times its
denoising loss and it learned nothing: validation loss 0.99, that of predicting no
noise). The
penalty's exact Laplacian costs one Hessian-vector product per coordinate, differentiated
once more: a step of ala2's 6-bead map costs about three plain steps.

Rotations are not augmented: the energy is a function of distances, so a rotated frame
gives the same loss for the same noise rotated, which is as likely.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import torch

from cgpipe.data import evenly
from cgpipe.epochs import EpochCheckpoint
from cgpipe.errors import InputError
from cgpipe.models import EnergyModel
from cgpipe.train.base import TRAINERS, EpochTrainer, FitResult, TrainingData

log = logging.getLogger(__name__)

FOKKER_PLANCK_FRAMES = 8
"""Frames of each batch whose Fokker-Planck residual is penalised (its exact Laplacian
costs a batched backward pass per coordinate: at 8 frames of ala2's 6 beads a step costs
about three plain ones; at 16, with a loop over coordinates, it cost eight)."""
SCORE_SEED = 20231012
"""Seed of the fixed draws (t, eps) that validation and held-out frames are scored with."""


@TRAINERS.register("denoising")
class Denoising(EpochTrainer):
    """Denoising score matching with AdamW, cosine annealing, model selection and early
    stopping.

    Parameters
    ----------
    epochs, batch_size, learning_rate, weight_decay, validation_frames, patience
        As for force matching (:class:`~cgpipe.train.base.EpochTrainer`).
    low_noise_steps
        Diffusion steps below this weigh ``low_noise_weight`` times the others.
    low_noise_weight
        Their weight.
    """

    loss_unit = "1"
    rmse_unit = "1"

    def __init__(self, *, low_noise_steps: int, low_noise_weight: float, **options: Any) -> None:
        super().__init__(**options)
        if low_noise_steps < 0 or low_noise_weight <= 0:
            raise ValueError("low_noise_steps must be >= 0 and low_noise_weight positive")
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

    def fokker_planck_penalty(
        self, model: EnergyModel, y0: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """The variance over ``y0``'s frames (scaled, centred) noised to one tau of the
        Fokker-Planck residual times sigma^2(tau) / beta(tau), per degree of freedom (a
        scalar)."""
        from cgpipe.models.diffusion import centred_noise, continuous_schedule

        highest = min(max(self.low_noise_steps, 1), model.steps)
        step = 1 + int(torch.randint(highest, (1,), generator=generator))
        tau = step / model.steps
        abar, beta = continuous_schedule(torch.tensor(tau, dtype=torch.float64))
        eps = centred_noise(y0.shape, generator, y0)
        y = math.sqrt(float(abar)) * y0 + math.sqrt(1 - float(abar)) * eps
        residual = model.fokker_planck_residual(y, tau) * float((1 - abar) / beta)
        dof = 3 * (y0.shape[1] - 1)
        return (residual - residual.mean()).pow(2).mean() / max(dof, 1)

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
        model.fit_statistics(x_train)  # the scale, and the bonded terms' statistics
        y_train = x_train / model.scale
        scored = evenly(np.arange(len(training.validation_positions)), self.validation_frames)
        validating = len(scored) > 0
        x_valid = centred(training.validation_positions[scored])
        log.info("fold %d: %d validation frames scored", training.fold, len(scored))

        weight = model.fokker_planck_weight

        def batch_loss(batch: torch.Tensor) -> torch.Tensor:
            t = torch.randint(1, model.steps + 1, (len(batch),), generator=generator)
            eps = centred_noise((len(batch), model.n_beads, 3), generator, y_train)
            loss = self.loss(model, y_train[batch], t.to(device), eps, create_graph=True)
            if weight > 0:
                frames = y_train[batch[:FOKKER_PLANCK_FRAMES]]
                loss = loss + weight * self.fokker_planck_penalty(model, frames, generator)
            return loss

        return self.run_epochs(
            model,
            len(y_train),
            batch_loss,
            (lambda: self.score(model, x_valid, None)) if validating else None,
            training=training,
            generator=generator,
            device=device,
            checkpoint=checkpoint,
        )
