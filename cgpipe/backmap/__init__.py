"""Backmapping CG frames to all atoms.

Each registered :class:`Backmapper` named in ``backmap.methods`` (built with its section
``backmap.<method>``) is fitted once per fold on the all-atom frames of that fold's
training trajectories, never on a held-out one (:func:`fit`), scored on the held-out
frames, and maps every model's simulated CG frames of the fold back to all atoms
(:func:`run`).
"""

from cgpipe.backmap.base import BACKMAPPERS, Backmapper, load_backmapper, save_backmapper
from cgpipe.backmap.stage import fit, run

__all__ = ["BACKMAPPERS", "Backmapper", "fit", "load_backmapper", "run", "save_backmapper"]
