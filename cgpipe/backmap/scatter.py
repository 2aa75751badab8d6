"""The negative control of backmapping: atoms scattered around their beads.

Every atom is drawn in an isotropic Gaussian of width ``noise`` (nm) around the bead it
belongs to, and the structure is moved the least that maps it exactly onto its CG
frame: the flow's starting point (:mod:`cgpipe.backmap.flow`), a backmapper that learned
nothing but which atom sits near which bead. It keeps the CG frame exactly, as the flow
does, so a metric that cannot tell it from real frames (bonds, angles, clashes, hands,
energies) or from the fitted backmappers (RMSD to the truth) judges nothing; the report
says which.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from cgpipe.backmap.base import (
    BACKMAPPERS,
    Backmapper,
    bead_owners,
    coordinate_map_for,
    onto_beads,
    samples_table,
)
from cgpipe.data import evenly
from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData

if TYPE_CHECKING:
    import mdtraj as md

    from cgpipe.epochs import EpochCheckpoint
    from cgpipe.mapping import Mapping

OWNER_FRAMES = 1000
"""Training frames (spread evenly) that decide which bead each atom belongs to."""


@BACKMAPPERS.register("scatter")
class Scatter(Backmapper):
    """Atoms in a Gaussian around their beads, fitted exactly onto the CG frame.

    Parameters
    ----------
    samples
        Structures drawn per CG frame.
    noise
        Width (nm) of each atom's Gaussian around its bead.
    """

    control = True

    def __init__(self, *, samples: int = 4, noise: float = 0.05) -> None:
        if samples < 1:
            raise InputError(f"backmap.scatter.samples={samples} must be at least 1")
        if noise <= 0:
            raise InputError(f"backmap.scatter.noise={noise} must be positive (nm)")
        self.samples, self.noise = samples, noise
        self.hparams: dict[str, Any] = {"samples": samples, "noise": noise}
        self.xi: np.ndarray | None = None
        self.owner: np.ndarray | None = None

    def fit(
        self,
        training: TrajectoryData,
        mapping: Mapping,
        *,
        seed: int = 0,
        device: str = "cpu",
        checkpoint: EpochCheckpoint | None = None,
    ) -> None:
        self.xi = coordinate_map_for(training, mapping, min_frames=1)
        frames = training.coordinates[evenly(np.arange(training.n_frames), OWNER_FRAMES)]
        self.owner = bead_owners(frames.astype(np.float64), self.xi)

    def backmap(self, cg: TrajectoryData) -> tuple[np.ndarray, pd.DataFrame]:
        if self.xi is None or self.owner is None:
            raise RuntimeError("fit the backmapper before backmapping")
        generator = torch.Generator().manual_seed(0)  # the same frames, the same structures
        beads = torch.as_tensor(cg.coordinates, dtype=torch.float64)
        beads = beads.repeat_interleave(self.samples, dim=0)
        start = beads[:, torch.as_tensor(self.owner)] + self.noise * torch.randn(
            (len(beads), len(self.owner), 3), generator=generator, dtype=torch.float64
        )
        positions = onto_beads(start, beads, self.xi).numpy()
        table = samples_table(cg, positions, self.xi, self.samples)
        return positions.astype(np.float32), table

    def state(self) -> dict[str, torch.Tensor]:
        if self.xi is None or self.owner is None:
            raise RuntimeError("fit the backmapper before saving it")
        return {"coordinate_map": torch.as_tensor(self.xi), "owner": torch.as_tensor(self.owner)}

    def restore(self, state: dict[str, torch.Tensor], topology: md.Topology) -> None:
        self.xi = state["coordinate_map"].numpy()
        self.owner = state["owner"].numpy()
