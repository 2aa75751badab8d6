"""The backmapper interface and its registry.

A backmapper turns CG frames into all-atom frames. It is fitted per fold on the
all-atom frames of that fold's training trajectories only, never on a held-out one,
and then backmaps the CG frames a model simulated.

A new backmapper is one module of this package::

    @BACKMAPPERS.register("my_method")
    class MyMethod(Backmapper):
        def __init__(self, *, option): ...
        def fit(self, training, mapping): ...
        def backmap(self, cg): ...

plus its section ``backmap.my_method`` in the config schema, whose keys are the
keyword-only options of its constructor.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import pandas as pd

from cgpipe.registry import Registry

if TYPE_CHECKING:
    from cgpipe.io import TrajectoryData
    from cgpipe.mapping import Mapping


class Backmapper(abc.ABC):
    """CG frames to all-atom frames, learned from a fold's training trajectories.

    The constructor takes the keys of the method's config section ``backmap.<name>``
    as keyword arguments, and nothing else.
    """

    name: ClassVar[str]

    @abc.abstractmethod
    def fit(self, training: TrajectoryData, mapping: Mapping) -> None:
        """Learn from all-atom frames.

        Parameters
        ----------
        training
            All-atom frames [n_frames, n_atoms, 3] (nm) of the fold's training
            trajectories, labelled by trajectory; never a held-out frame.
        mapping
            The CG mapping: ``n_beads`` and ``coordinate_map`` Xi [n_beads, n_atoms].
        """

    @abc.abstractmethod
    def backmap(self, cg: TrajectoryData) -> tuple[np.ndarray, pd.DataFrame]:
        """All-atom frames for CG frames.

        Parameters
        ----------
        cg
            CG frames [n_frames, n_beads, 3] (nm), labelled by replica in
            ``trajectory_index``.

        Returns
        -------
        positions, table
            [n_frames, n_atoms, 3] all-atom positions (nm), and one row per frame with
            at least ``replica`` and ``cg_rmsd`` (nm, between the CG frame and the
            mapped all-atom frame), plus columns of the method's own.
        """


BACKMAPPERS: Registry[type[Backmapper]] = Registry("backmapper", "cgpipe.backmap")
