"""Cross-validation folds split by trajectory."""

from __future__ import annotations

import numpy as np

from cgpipe.errors import InputError


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
