"""The trainer interface: how a model's parameters are fitted to one fold's training data.

A trainer is a class in a module of this package that subclasses :class:`Trainer` and
registers itself in :data:`TRAINERS`; its constructor takes its config section
(``trainers.<name>``) as keyword arguments. A model's section names its trainer
(``models.<model>.trainer``).
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np
import torch

from cgpipe.models import EnergyModel
from cgpipe.registry import Registry


@dataclasses.dataclass(frozen=True)
class TrainingData:
    """What a trainer sees of one fold: CG frames of its training and held-out trajectories.

    A trainer fits on ``positions``/``forces`` only; the held-out frames are for scoring.

    Attributes
    ----------
    positions
        [n_train, n_beads, 3] training positions, nm.
    forces
        [n_train, n_beads, 3] projected CG forces, kJ/mol/nm, or ``None`` for
        positions-only data.
    heldout_positions
        [n_heldout, n_beads, 3] positions of the held-out trajectories, nm.
    heldout_forces
        [n_heldout, n_beads, 3] kJ/mol/nm, or ``None`` for positions-only data.
    fold
        The cross-validation fold.
    source
        Where the frames came from (for messages).
    """

    positions: np.ndarray
    forces: np.ndarray | None
    heldout_positions: np.ndarray
    heldout_forces: np.ndarray | None
    fold: int
    source: str = ""

    def __post_init__(self) -> None:
        shape = self.positions.shape
        if len(shape) != 3 or shape[2] != 3:
            raise ValueError(f"positions must be [n_frames, n_beads, 3], got {shape}")
        if self.heldout_positions.shape[1:] != shape[1:]:
            raise ValueError(
                f"held-out positions {self.heldout_positions.shape} do not match the "
                f"training positions {shape}"
            )
        for name, forces, positions in (
            ("forces", self.forces, self.positions),
            ("heldout_forces", self.heldout_forces, self.heldout_positions),
        ):
            if forces is not None and forces.shape != positions.shape:
                raise ValueError(
                    f"{name} {forces.shape} do not match their positions {positions.shape}"
                )


class Trainer:
    """Fits a model to one fold's training frames.

    Subclasses take their config section as keyword arguments and implement :meth:`fit`.

    Attributes
    ----------
    name
        The registered name (set by :meth:`Registry.register`).
    """

    name: ClassVar[str] = ""

    def fit(
        self,
        model: EnergyModel,
        training: TrainingData,
        *,
        generator: torch.Generator,
        device: torch.device,
    ) -> list[dict[str, Any]]:
        """Train ``model`` (already on ``device``) in place.

        Parameters
        ----------
        model
            The model, built on the fold's prior.
        training
            The fold's frames.
        generator
            The CPU generator for every random draw of the training (batch order, ...).
        device
            Where the model lives and the work runs.

        Returns
        -------
        list of dict
            Loss records, one per epoch and split: :data:`cgpipe.keys.EPOCH`,
            :data:`~cgpipe.keys.SPLIT` (``train``/``heldout``), :data:`~cgpipe.keys.LOSS`
            and :data:`~cgpipe.keys.RMSE` (force RMSE, kJ/mol/nm).

        Raises
        ------
        InputError
            The data cannot train this model (positions-only data for force matching).
        """
        raise NotImplementedError(f"{type(self).__qualname__} does not define fit()")


TRAINERS: Registry[type[Trainer]] = Registry("trainer", "cgpipe.train")
