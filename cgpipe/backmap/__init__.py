"""Backmapping CG frames to all atoms.

A registered :class:`Backmapper` (``backmap.method``, built with its section
``backmap.<method>``) is fitted per fold on the all-atom frames of that fold's training
trajectories, never on a held-out one, and maps the fold's simulated CG frames back to
all atoms.
"""

from cgpipe.backmap.base import BACKMAPPERS, Backmapper
from cgpipe.backmap.stage import run

__all__ = ["BACKMAPPERS", "Backmapper", "run"]
