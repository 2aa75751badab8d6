"""Training of CG force fields, one model per cross-validation fold.

Folds are split by trajectory (:mod:`cgpipe.data`), never by frame. Inside a fold's
training trajectories an inner validation set is split off (:func:`split_validation`);
the prior is fitted to the remaining training frames, the model
(:data:`cgpipe.models.MODELS`) is built on it, and the trainer that the model's section
names (:data:`TRAINERS`) fits it, keeping the epoch with the lowest validation loss. The
fold's held-out trajectories never reach the trainer: they are scored once, at the end.
Trainers are plug-ins: each subclasses :class:`Trainer` in its own module of this package
and registers itself.
"""

from cgpipe.train.base import TRAINERS, FitResult, Trainer, TrainingData
from cgpipe.train.run import (
    VALIDATION_TAIL,
    ValidationSplit,
    replicate_seed,
    run,
    split_validation,
)

__all__ = [
    "TRAINERS",
    "VALIDATION_TAIL",
    "FitResult",
    "Trainer",
    "TrainingData",
    "ValidationSplit",
    "replicate_seed",
    "run",
    "split_validation",
]
