"""The data every fold-wise stage works on: cross-validation folds split by trajectory,
and the CG data and mapping of one fold read once.

Folds are split by trajectory, never by frame: frames of one trajectory are
correlated, so a frame-wise split would leak the held-out trajectory into training.
Whatever is fitted to data (priors, models, learned maps, backmappers) is fitted on
:attr:`FoldData.training` only, which holds no frame of a held-out trajectory.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData, read_trajectory


def fold_trajectories(trajectories: np.ndarray, n_folds: int, fold: int) -> np.ndarray:
    """The trajectory labels held out in ``fold`` (contiguous blocks of the sorted labels)."""
    labels = np.unique(trajectories)
    if not 2 <= n_folds <= len(labels):
        raise InputError(
            f"train.n_folds={n_folds} needs between 2 and the {len(labels)} available trajectories"
        )
    if not 0 <= fold < n_folds:
        raise InputError(f"fold {fold} is outside 0..{n_folds - 1}")
    return np.array_split(labels, n_folds)[fold]


def split_frames(
    trajectory_index: np.ndarray, n_folds: int, fold: int
) -> tuple[np.ndarray, np.ndarray]:
    """Frame indices (train, held-out) of ``fold``."""
    held_out = np.isin(trajectory_index, fold_trajectories(trajectory_index, n_folds, fold))
    return np.flatnonzero(~held_out), np.flatnonzero(held_out)


def evenly(frames: np.ndarray, at_most: int) -> np.ndarray:
    """At most ``at_most`` of ``frames``, spread evenly over them."""
    if len(frames) <= at_most:
        return frames
    return frames[np.linspace(0, len(frames) - 1, at_most).round().astype(np.int64)]


def subset(data: TrajectoryData, frames: np.ndarray) -> TrajectoryData:
    """The given frames of ``data`` (labels and provenance kept)."""
    return TrajectoryData(
        topology=data.topology,
        coordinates=data.coordinates[frames],
        time=data.time[frames],
        forces=data.forces[frames] if data.forces is not None else None,
        trajectory_index=data.trajectory_index[frames],
        provenance=data.provenance,
    )


@dataclasses.dataclass
class FoldData:
    """One fold of one data set: all frames, and which are for training and held out.

    Attributes
    ----------
    data
        Every frame (CG or all-atom), labelled by trajectory.
    fold, n_folds
        Which fold of how many.
    train_frames, heldout_frames
        Frame indices into ``data`` of the training and held-out trajectories.
    """

    data: TrajectoryData
    fold: int
    n_folds: int
    train_frames: np.ndarray
    heldout_frames: np.ndarray

    @classmethod
    def split(cls, data: TrajectoryData, n_folds: int, fold: int) -> FoldData:
        train, held_out = split_frames(data.trajectory_index, n_folds, fold)
        return cls(data, fold, n_folds, train, held_out)

    @classmethod
    def read(cls, path: str | os.PathLike[str], n_folds: int, fold: int) -> FoldData:
        """Read a trajectory file holding every trajectory and split it."""
        return cls.split(read_trajectory(path), n_folds, fold)

    @classmethod
    def read_all(cls, paths: Sequence[str | os.PathLike[str]], n_folds: int, fold: int) -> FoldData:
        """Read one trajectory per file (trajectory ``i`` gets label ``i``, as in the CG
        file of the forces stage) and split them."""
        parts = [read_trajectory(path) for path in paths]  # their errors name the file
        for path, part in zip(paths, parts, strict=True):
            if part.topology.n_atoms != parts[0].topology.n_atoms:
                raise InputError(
                    f"{path}: {part.topology.n_atoms} atoms, but {paths[0]} has "
                    f"{parts[0].topology.n_atoms}"
                )
        return cls.split(TrajectoryData.concatenate(parts), n_folds, fold)

    @property
    def training(self) -> TrajectoryData:
        """The frames of the training trajectories: all that a fitted method may see."""
        return subset(self.data, self.train_frames)

    @property
    def held_out(self) -> TrajectoryData:
        """The frames of the held-out trajectories."""
        return subset(self.data, self.heldout_frames)


def fitting_frames(
    what: str, paths: Sequence[str | os.PathLike[str]], n_folds: int, fold: int | None
) -> TrajectoryData:
    """The frames a fitted method (``what``, e.g. "mapping 'kmeans'") may learn from: the
    training trajectories of ``fold``, which it must be given."""
    if fold is None:
        raise InputError(
            f"{what} is fitted to the training trajectories of one fold; give the fold"
        )
    return FoldData.read_all(paths, n_folds, fold).training


def check_beads(n_beads: int, data: TrajectoryData, mapping_path: Path, data_path: Path) -> None:
    """Refuse CG data whose bead count is not the mapping's."""
    if n_beads != data.topology.n_atoms:
        raise InputError(
            f"{mapping_path} has {n_beads} beads but {data_path} has {data.topology.n_atoms}"
        )
