"""Nearest template: for each CG frame, the all-atom training frame whose CG image fits
it best, superimposed on the CG frame by the Kabsch fit of its mapped positions.

Internal distances cannot tell a CG frame from its mirror image, so the
:data:`CANDIDATES` templates nearest in internal distances are each superimposed by a
proper rotation, and the one of lowest RMSD is taken: a mirror image fits no better than
its distances allow, and a chiral template of the right hand wins.

Honest and simple: it can only give conformations the training trajectories visited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from sklearn.neighbors import NearestNeighbors

from cgpipe import keys
from cgpipe.backmap.base import BACKMAPPERS, Backmapper, coordinate_map_for
from cgpipe.data import evenly
from cgpipe.errors import InputError
from cgpipe.geometry import kabsch, rmsd, superpose
from cgpipe.io import TrajectoryData

if TYPE_CHECKING:
    import mdtraj as md
    import torch

    from cgpipe.epochs import EpochCheckpoint
    from cgpipe.mapping import Mapping

CANDIDATES = 16
"""Templates nearest in internal distances among which the best proper superposition is
chosen (the mirror check)."""


def internal_distances(positions: np.ndarray) -> np.ndarray:
    """[n_frames, n_pairs] distances (nm) of all bead pairs i < j of positions
    [n_frames, n_beads, 3] (rotation invariant)."""
    i, j = np.triu_indices(positions.shape[1], k=1)
    return np.linalg.norm(positions[:, i] - positions[:, j], axis=-1)


def backmap_nearest(
    cg_positions: np.ndarray, templates: np.ndarray, xi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All-atom positions for CG frames by nearest template.

    Parameters
    ----------
    cg_positions
        [n_frames, n_beads, 3] CG frames (nm).
    templates
        [n_templates, n_atoms, 3] all-atom reference frames (nm).
    xi
        [n_beads, n_atoms] coordinate map.

    Returns
    -------
    positions, template_index, cg_rmsd
        [n_frames, n_atoms, 3] all-atom positions, the template used per frame, and the
        CG-space RMSD (nm) between each CG frame and its superimposed template.
    """
    if not len(cg_positions):  # every replica failed before its first saved frame
        return (
            np.empty((0, *templates.shape[1:]), dtype=np.float32),
            np.empty(0, dtype=np.int64),
            np.empty(0),
        )
    template_cg = np.einsum("ba,fad->fbd", xi, templates)
    k = min(CANDIDATES, len(templates))
    search = NearestNeighbors(n_neighbors=k).fit(internal_distances(template_cg))
    _, candidates = search.kneighbors(internal_distances(cg_positions))
    # The mirror check: of the candidates, the best fit by a proper rotation.
    n_frames = len(cg_positions)
    target = np.repeat(cg_positions, k, axis=0)
    mobile = template_cg[candidates.reshape(-1)]
    fit = superpose(mobile, *kabsch(mobile, target))
    best = rmsd(fit, target).reshape(n_frames, k).argmin(axis=1)
    nearest = candidates[np.arange(n_frames), best]
    rotation, translation = kabsch(template_cg[nearest], cg_positions)
    positions = superpose(templates[nearest], rotation, translation)
    fitted = superpose(template_cg[nearest], rotation, translation)
    return positions.astype(np.float32), nearest, rmsd(fitted, cg_positions)


@BACKMAPPERS.register("nearest")
class NearestTemplate(Backmapper):
    """The nearest of at most ``max_templates`` training frames, spread evenly.

    Parameters
    ----------
    max_templates
        Most training frames to choose from (config ``backmap.nearest.max_templates``).

    The table's ``template`` column is the index of the template used among the
    templates (the evenly spread training frames), in order.
    """

    def __init__(self, *, max_templates: int) -> None:
        if max_templates < 1:
            raise InputError(f"backmap.nearest.max_templates={max_templates} must be at least 1")
        self.max_templates = max_templates
        self.hparams = {"max_templates": max_templates}
        self.templates: np.ndarray | None = None
        self.coordinate_map: np.ndarray | None = None

    def fit(
        self,
        training: TrajectoryData,
        mapping: Mapping,
        *,
        seed: int = 0,
        device: str = "cpu",
        checkpoint: EpochCheckpoint | None = None,
    ) -> None:
        xi = coordinate_map_for(training, mapping, min_frames=1)
        frames = evenly(np.arange(training.n_frames), self.max_templates)
        self.templates = training.coordinates[frames]
        self.coordinate_map = xi

    def backmap(self, cg: TrajectoryData) -> tuple[np.ndarray, pd.DataFrame]:
        if self.templates is None or self.coordinate_map is None:
            raise RuntimeError("fit the backmapper before backmapping")
        positions, template, cg_rmsd = backmap_nearest(
            cg.coordinates, self.templates, self.coordinate_map
        )
        table = pd.DataFrame(
            {
                keys.REPLICA: cg.trajectory_index,
                keys.SAMPLE: np.zeros(cg.n_frames, dtype=np.int64),
                keys.TEMPLATE: template,
                keys.CG_RMSD: cg_rmsd,
            }
        )
        return positions, table

    def state(self) -> dict[str, torch.Tensor]:
        import torch

        if self.templates is None or self.coordinate_map is None:
            raise RuntimeError("fit the backmapper before saving it")
        return {
            "templates": torch.as_tensor(self.templates),
            "coordinate_map": torch.as_tensor(self.coordinate_map),
        }

    def restore(self, state: dict[str, torch.Tensor], topology: md.Topology) -> None:
        self.templates = state["templates"].numpy()
        self.coordinate_map = state["coordinate_map"].numpy()
