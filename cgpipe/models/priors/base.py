"""The prior-term interface and its registry.

A prior term is one kind of physical energy on a set of bead tuples (bonds, angles,
dihedrals, ...), fitted to the fold's CG frames and summed into the
:class:`~cgpipe.models.prior.Prior`. Each term is a subclass of :class:`PriorTerm` in its
own module of this package, registered in :data:`PRIOR_TERMS`::

    @PRIOR_TERMS.register("bonds")
    class Bonds(PriorTerm): ...

so a new term is one module (plus the ``train.prior`` keys its ``fit`` reads, in the
config schema, and its tests): :func:`~cgpipe.models.prior.fit_prior` fits every
registered term, and a checkpoint rebuilds each one from its registered name and its
plain constructor arguments (torchmd-net's ``priors/``, mlcg's ``nn/prior``).
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from cgpipe.registry import Registry


class PriorTerm(nn.Module):
    """One term of the prior: energies [n_frames] (kJ/mol) of CG positions (nm).

    Subclasses implement :meth:`fit` (a classmethod) and :meth:`energy`; their
    constructor takes plain JSON-able lists and numbers, kept in :attr:`hparams`, so that
    ``type(term)(**term.hparams)`` rebuilds the term. Parameters are buffers (float32, or
    whatever ``.to()`` makes them): nothing in a prior is trained. Members (the bead
    tuples a term acts on) are evaluated together, as tensors, never in a Python loop.

    Attributes
    ----------
    name
        The registered name (set by :meth:`Registry.register`); the term's key in the
        prior's ``hparams``.
    hparams
        The constructor arguments, JSON-able.
    """

    name: ClassVar[str] = ""
    hparams: dict[str, Any]

    @classmethod
    def fit(
        cls, positions: torch.Tensor, bonds: np.ndarray, kT: float, **options: Any
    ) -> PriorTerm:
        """Fit the term to CG frames.

        Parameters
        ----------
        positions
            [n_frames, n_beads, 3] float64 CG positions (nm) of the fold's training frames.
        bonds
            [n_bonds, 2] bead index pairs of the mapping.
        kT
            Thermal energy (kJ/mol) at the temperature the frames were sampled at.
        **options
            The ``train.prior`` keys that this term reads, as keyword-only arguments with
            their defaults in the subclass's signature (:meth:`option_names`).

        Returns
        -------
        The fitted term; one with no members (none of its tuples in the bead graph) is
        valid and contributes zero energy.
        """
        raise NotImplementedError(f"{cls.__qualname__} does not define fit()")

    @classmethod
    def option_names(cls) -> frozenset[str]:
        """The ``train.prior`` keys that :meth:`fit` reads (its keyword-only arguments)."""
        parameters = inspect.signature(cls.fit).parameters.values()
        return frozenset(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)

    def __len__(self) -> int:
        """Number of members (bead tuples)."""
        raise NotImplementedError(f"{type(self).__qualname__} does not define __len__()")

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        """Energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3] (nm)."""
        raise NotImplementedError(f"{type(self).__qualname__} does not define energy()")

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """Energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3] (nm)."""
        return self.energy(positions)

    def tuples(self, name: str, values: list[list[int]], width: int) -> None:
        """Register ``values`` as a long buffer [n_members, width], also when empty."""
        self.register_buffer(name, torch.tensor(values, dtype=torch.long).reshape(-1, width))

    def parameter(self, name: str, values: Any, width: int | None = None) -> None:
        """Register ``values`` as a float32 buffer ([n_members] or [n_members, width])."""
        tensor = torch.tensor(values, dtype=torch.float32)
        if width is not None:  # rows of fixed width, also when there are none
            tensor = tensor.reshape(len(values), width)
        self.register_buffer(name, tensor)


PRIOR_TERMS: Registry[type[PriorTerm]] = Registry("prior term", "cgpipe.models.priors")
