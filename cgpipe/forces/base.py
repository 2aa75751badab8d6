"""The interface every force map implements, and its registry.

A force map Xi_f [n_beads, n_atoms] takes the all-atom forces f [n_atoms, 3]
(kJ/mol/nm) to bead forces F = Xi_f f. With the mapping's coordinate map Xi it must
satisfy Xi_f Xi^T = I, so that the conditional mean of F given the CG coordinates is
the mean force -grad A(z) that force matching learns (Noid et al., J. Chem. Phys. 128,
244114 (2008)); among the maps that do, some give less noisy forces than others
(Krämer et al., "Statistically optimal force aggregation for coarse-graining molecular
dynamics", J. Phys. Chem. Lett. 14, 3970 (2023)).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData
from cgpipe.mapping import Mapping
from cgpipe.registry import Registry


class ForceMap:
    """A way to project all-atom forces on the beads of a mapping.

    A force map is a subclass in its own module of :mod:`cgpipe.forces`, registered with
    ``@FORCE_MAPS.register("<name>")``; its constructor takes the options of its config
    section ``forces.<name>`` as keyword arguments.

    Attributes
    ----------
    name
        The registered name, set by the registry.
    fitted
        True for a force map fitted to data (an optimal force map): :meth:`matrix` then
        receives the all-atom training frames of one cross-validation fold, never a
        held-out frame.
    """

    name: ClassVar[str]
    fitted: ClassVar[bool] = False

    def __init__(self, **section: object) -> None:
        if section:
            raise InputError(f"force map {self.name!r} takes no options; got {sorted(section)}")

    def matrix(self, mapping: Mapping, training: TrajectoryData | None) -> np.ndarray:
        """The force map of ``mapping``.

        Parameters
        ----------
        mapping
            The CG mapping (its coordinate map Xi and its own force weights).
        training
            For a fitted force map, the fold's all-atom training frames (positions in nm,
            forces in kJ/mol/nm); ``None`` otherwise.

        Returns
        -------
        numpy.ndarray
            Xi_f, [n_beads, n_atoms], dimensionless, with Xi_f Xi^T = I.
        """
        raise NotImplementedError


FORCE_MAPS: Registry[type[ForceMap]] = Registry("force map", "cgpipe.forces")
