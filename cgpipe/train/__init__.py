"""Training of CG force fields, one model per cross-validation fold.

Folds are split by trajectory (:mod:`cgpipe.data`), never by frame. The prior is fitted
to the fold's training frames, the model (:data:`cgpipe.models.MODELS`) is built on it,
and the trainer that the model's section names (:data:`TRAINERS`) fits it. Trainers are
plug-ins: each subclasses :class:`Trainer` in its own module of this package and
registers itself.
"""

from cgpipe.train.base import TRAINERS, Trainer, TrainingData
from cgpipe.train.run import run

__all__ = ["TRAINERS", "Trainer", "TrainingData", "run"]
