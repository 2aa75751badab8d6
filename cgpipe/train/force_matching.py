"""Variational force matching (Noid et al. 2008; CGnet, Wang et al. 2019).

Minimises E ||F_theta(z) - Xi_f f(x)||^2 over the training frames, whose minimiser is
the mean force -grad A(z); forces are -dE/dz by autograd, so the loss is differentiated
twice. AdamW with the learning rate cosine-annealed to 1 % of its start; after every
epoch the force RMSE on evenly spread frames of the held-out trajectories is recorded.
A model with nothing to train (the prior alone) is scored once.
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
from cgpipe.models import EnergyModel, force_rmse
from cgpipe.train.base import TRAINERS, Trainer, TrainingData

log = logging.getLogger(__name__)


@TRAINERS.register("force_matching")
class ForceMatching(Trainer):
    """Force matching with AdamW and cosine annealing.

    Parameters
    ----------
    epochs
        Passes over the training frames.
    batch_size
        Frames per optimisation step.
    learning_rate
        Initial AdamW learning rate; annealed to 1 % of it over all steps.
    weight_decay
        AdamW weight decay.
    heldout_frames
        At most this many held-out frames, spread evenly, are scored after every epoch.
    """

    def __init__(
        self,
        *,
        epochs: int,
        batch_size: int,
        learning_rate: float,
        weight_decay: float,
        heldout_frames: int,
    ) -> None:
        if epochs < 1 or batch_size < 1 or heldout_frames < 1:
            raise ValueError("epochs, batch_size and heldout_frames must be positive")
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.learning_rate = float(learning_rate)
        self.weight_decay = float(weight_decay)
        self.heldout_frames = int(heldout_frames)

    def fit(
        self,
        model: EnergyModel,
        training: TrainingData,
        *,
        generator: torch.Generator,
        device: torch.device,
    ) -> list[dict[str, Any]]:
        trainable = [p for p in model.parameters() if p.requires_grad]
        if training.forces is None and trainable:
            raise InputError(
                f"{training.source}: no forces (positions-only data); {model.name} is trained "
                "by force matching and needs them"
            )
        scored = evenly(np.arange(len(training.heldout_positions)), self.heldout_frames)
        log.info("fold %d: %d held-out frames scored", training.fold, len(scored))

        def tensor(array: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(array, dtype=torch.float32, device=device)

        x_train = tensor(training.positions)
        x_test = tensor(training.heldout_positions[scored])
        f_train = tensor(training.forces) if training.forces is not None else None
        f_test = (
            tensor(training.heldout_forces[scored]) if training.heldout_forces is not None else None
        )
        n_train = len(x_train)
        records: list[dict[str, Any]] = []
        epochs = self.epochs if trainable else 0
        if trainable:
            optimizer = torch.optim.AdamW(
                trainable, lr=self.learning_rate, weight_decay=self.weight_decay
            )
            steps_per_epoch = math.ceil(n_train / self.batch_size)
            scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                optimizer, T_max=epochs * steps_per_epoch, eta_min=0.01 * self.learning_rate
            )
        for epoch in tqdm(
            range(epochs), desc=f"fold {training.fold}", file=sys.stderr, mininterval=5
        ):
            model.train()
            order = torch.randperm(n_train, generator=generator).to(device)
            total = torch.zeros((), device=device)  # summed on the device: no sync per step
            count = 0
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
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
                training.fold,
                epoch,
                math.sqrt(train_mse),
                test_rmse,
            )
        if not records:  # a model with nothing to train (the prior alone) is scored once
            test_rmse = force_rmse(model, x_test, f_test) if f_test is not None else float("nan")
            records.append(
                {
                    keys.EPOCH: 0,
                    keys.SPLIT: "heldout",
                    keys.LOSS: test_rmse**2,
                    keys.RMSE: test_rmse,
                }
            )
        return records
