"""Physical prior: the sum of the registered prior terms (:mod:`cgpipe.models.priors`),
each fitted to the fold's CG frames: harmonic bonds and angles, Fourier dihedrals (one per
bond) and harmonic impropers at branched beads by Boltzmann inversion, a flat-bottom wall
between the end beads of every angle, and a short-range repulsion between beads more
than two bonds apart.

The prior keeps simulations in physical regions the network never saw (CGnet, Wang et
al. 2019; CGSchNet, Husic et al. 2020). Its parameters are buffers and its constructor
takes plain dicts and lists (each term's registered name and constructor arguments), so a
checkpoint rebuilds it without pickles.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from cgpipe.bonded import (  # noqa: F401 - re-exported: the prior's terms live on these paths
    angle_end_pairs,
    angle_triples,
    dihedral_quadruples,
    improper_quadruples,
    nonbonded_pairs,
)
from cgpipe.models.priors import PRIOR_TERMS, PriorTerm
from cgpipe.models.priors.geometry import bond_angles, dihedral_angles  # noqa: F401
from cgpipe.models.priors.inversion import boltzmann_inversion, fourier_inversion  # noqa: F401
from cgpipe.units import thermal_energy


class Prior(nn.Module):
    """Sum of prior terms: energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3]
    (nm).

    Parameters
    ----------
    terms
        Registered term name -> that term's constructor arguments (its ``hparams``), e.g.
        ``{"bonds": {"pairs": [[0, 1]], "k": [5e3], "r0": [0.38]}, ...}``.
    temperature
        Temperature (K) the terms were fitted at: their energies were inverted with this
        kT (the ``prior_hot`` control rescales them from it).

    Attributes
    ----------
    terms
        Name -> :class:`~cgpipe.models.priors.base.PriorTerm` (an ``nn.ModuleDict``).
    hparams
        ``{"terms": ..., "temperature": ...}``, JSON-able.
    """

    def __init__(self, terms: Mapping[str, Mapping[str, Any]], temperature: float) -> None:
        super().__init__()
        self.terms = nn.ModuleDict(
            {name: PRIOR_TERMS.get(name)(**arguments) for name, arguments in terms.items()}
        )
        if not temperature > 0:
            raise ValueError(f"temperature must be positive, got {temperature} K")
        self.temperature = float(temperature)
        self.hparams: dict[str, Any] = {
            "terms": {name: term.hparams for name, term in self.terms.items()},
            "temperature": self.temperature,
        }

    def term(self, name: str) -> PriorTerm | None:
        """The term registered as ``name``, or ``None`` if this prior has none."""
        return self.terms[name] if name in self.terms else None

    @property
    def bonds(self) -> torch.Tensor:
        """[n_bonds, 2] bonded bead pairs (the simulate stage checks their lengths)."""
        bonds = self.term("bonds")
        return bonds.pairs if bonds is not None else torch.empty(0, 2, dtype=torch.long)

    @property
    def bond_r0(self) -> torch.Tensor:
        """[n_bonds] rest lengths (nm) of :attr:`bonds`."""
        bonds = self.term("bonds")
        return bonds.r0 if bonds is not None else torch.empty(0)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """Prior energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3] (nm)."""
        energy = positions.new_zeros(positions.shape[0])
        for term in self.terms.values():
            if len(term):
                energy = energy + term(positions)
        return energy


def fit_prior(
    positions: np.ndarray, bonds: np.ndarray, temperature: float, **options: Any
) -> Prior:
    """Fit every registered prior term to CG positions [n_frames, n_beads, 3] (nm) sampled
    at ``temperature`` (K) on the bead graph ``bonds`` [n_bonds, 2].

    ``options`` are the keys of ``train.prior`` (``bins``, ``dihedral_order``,
    ``dihedral_pseudo_count``, ``repulsion_exponent``, ``repulsion_quantile``,
    ``angle_wall_onset_quantile``, ``angle_wall_height``); each term receives those its
    ``fit`` names and takes its own defaults for the rest. ``dihedral_order`` 0 leaves the
    dihedral term empty.

    Raises
    ------
    TypeError
        An option that no registered term reads.
    """
    classes = [PRIOR_TERMS.get(name) for name in PRIOR_TERMS.names()]
    known = frozenset().union(*(cls.option_names() for cls in classes))
    unknown = sorted(set(options) - known)
    if unknown:
        raise TypeError(f"no prior term reads the options {unknown}; known: {sorted(known)}")
    kT = thermal_energy(temperature)
    x = torch.as_tensor(np.asarray(positions), dtype=torch.float64)
    if x.dim() != 3 or x.shape[-1] != 3:
        raise ValueError(f"positions have shape {tuple(x.shape)}, expected [n_frames, n_beads, 3]")
    bonds = np.asarray(bonds, dtype=np.int64).reshape(-1, 2)
    terms = {}
    for cls in classes:
        own = {key: value for key, value in options.items() if key in cls.option_names()}
        terms[cls.name] = cls.fit(x, bonds, kT, **own).hparams
    return Prior(terms, temperature)
