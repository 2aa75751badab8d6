"""Rigid-body superposition (Kabsch) on batches of frames, and chiral volumes."""

from __future__ import annotations

import numpy as np


def kabsch(
    mobile: np.ndarray, target: np.ndarray, weights: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rotations and translations that best superimpose ``mobile`` on ``target``.

    Parameters
    ----------
    mobile, target
        [n_frames, n_points, 3].
    weights
        [n_points] non-negative weights of the points in the fit (e.g. masses); equal
        weights when ``None``.

    Returns
    -------
    rotation, translation
        [n_frames, 3, 3] and [n_frames, 3] such that ``mobile @ R^T + t`` fits ``target``
        with the least (weighted) squared deviation (proper rotations only, det R = +1).
    """
    n_points = mobile.shape[1]
    w = np.full(n_points, 1.0 / n_points) if weights is None else weights / np.sum(weights)
    mobile_centre = np.einsum("p,fpi->fi", w, mobile)[:, None, :]
    target_centre = np.einsum("p,fpi->fi", w, target)[:, None, :]
    covariance = np.einsum("fpi,p,fpj->fij", mobile - mobile_centre, w, target - target_centre)
    u, _, vt = np.linalg.svd(covariance)
    sign = np.sign(np.linalg.det(np.einsum("fij,fjk->fik", u, vt)))
    correction = np.ones((len(mobile), 3))
    correction[:, 2] = sign
    rotation = np.einsum("fji,fj,fkj->fik", vt, correction, u)
    translation = target_centre[:, 0] - np.einsum("fij,fj->fi", rotation, mobile_centre[:, 0])
    return rotation, translation


def superpose(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
    """Apply per-frame rigid transforms to points [n_frames, n_points, 3]."""
    return np.einsum("fij,fpj->fpi", rotation, points) + translation[:, None, :]


def rmsd(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[n_frames] root-mean-square deviation between point sets [n_frames, n_points, 3]."""
    return np.sqrt(((a - b) ** 2).sum(axis=-1).mean(axis=-1))


def chiral_volumes(positions: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """[..., n] chiral volumes (a - centre) x (b - centre) . (c - centre) (nm^3) of the
    atom quadruples ``centres`` [n, 4] (centre, a, b, c) in ``positions`` [..., n_atoms, 3]:
    their sign is the centre's hand, a mirror image turns it."""
    x = np.asarray(positions, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.int64).reshape(-1, 4)
    centre, a, b, c = (x[..., centres[:, m], :] for m in range(4))
    return (np.cross(a - centre, b - centre) * (c - centre)).sum(axis=-1)
