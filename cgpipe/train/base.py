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
from typing import Any, ClassVar

import numpy as np
import torch

from cgpipe.epochs import EpochCheckpoint
from cgpipe.models import EnergyModel
from cgpipe.registry import Registry


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


TRAINERS: Registry[type[Trainer]] = Registry("trainer", "cgpipe.train")
