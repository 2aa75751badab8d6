"""Replica health from the reference's bonded statistics, not from the model.

A replica has failed when its positions are not finite, two of its beads are closer than
``min_distance``, a bond is longer than ``max_bond_stretch`` times the reference's mean
length of that bond, or one of its bonds or angles has stayed outside the reference's
0.1-99.9 % range of that bond or angle for ``window`` consecutive checks. The limits
come from the fold's training frames, so a model without a prior (a diffusion model) is
checked like any other, and a model whose prior is wrong cannot move its own limits.

Checks run on the device, without a host synchronisation: codes and the counters of
consecutive out-of-range checks are tensors, read by the caller when it chooses.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cgpipe.bonded import angle_triples
from cgpipe.models.priors.geometry import bond_angles

HEALTHY, NAN, COLLISION, BOND_STRETCH, BONDED_RANGE = range(5)
REASONS = ("", "nan", "collision", "bond_stretch", "bonded_range")
"""The failure reason of each code, as the health table writes it."""

RANGE_QUANTILES = (0.001, 0.999)
"""The range of each bond and angle in the reference that a replica must come back to."""


class Health:
    """Per-replica checks, on the device, against limits from reference CG frames.

    Parameters
    ----------
    bonds
        [n_bonds, 2] bonded bead pairs.
    max_bond_length
        [n_bonds] nm: a longer bond fails the replica at once.
    min_distance
        nm: closer beads fail the replica at once.
    bond_range, angle_range
        [n_bonds, 2] nm and [n_angles, 2] rad: each term's reference range.
    triples
        [n_angles, 3] bead triples of the angles.
    window
        Consecutive checks that a term may stay outside its range (0: never stopped for
        that).
    """

    def __init__(
        self,
        bonds: torch.Tensor,
        max_bond_length: torch.Tensor,
        min_distance: float,
        bond_range: torch.Tensor,
        triples: torch.Tensor,
        angle_range: torch.Tensor,
        window: int,
    ) -> None:
        self.bonds = bonds.long().reshape(-1, 2)
        self.max_bond_length = max_bond_length.float()
        self.min_distance = float(min_distance)
        self.bond_range = bond_range.float().reshape(-1, 2)
        self.triples = triples.long().reshape(-1, 3)
        self.angle_range = angle_range.float().reshape(-1, 2)
        self.window = int(window)

    @classmethod
    def from_reference(
        cls,
        frames: np.ndarray,
        bonds: np.ndarray,
        *,
        min_distance: float,
        max_bond_stretch: float,
        window: int,
    ) -> Health:
        """Limits from reference CG ``frames`` [n_frames, n_beads, 3] (nm) of the map with
        ``bonds`` [n_bonds, 2]."""
        positions = torch.as_tensor(np.asarray(frames), dtype=torch.float64)
        bonds_t = torch.as_tensor(np.asarray(bonds), dtype=torch.long).reshape(-1, 2)
        triples = torch.as_tensor(angle_triples(bonds_t.numpy()), dtype=torch.long).reshape(-1, 3)
        lengths = torch.linalg.vector_norm(
            positions[:, bonds_t[:, 1]] - positions[:, bonds_t[:, 0]], dim=-1
        )
        angles = bond_angles(positions, triples)
        quantiles = torch.tensor(RANGE_QUANTILES, dtype=torch.float64)

        def ranges(values: torch.Tensor) -> torch.Tensor:
            if not values.shape[1]:
                return torch.empty(0, 2)
            return torch.quantile(values, quantiles, dim=0).T

        return cls(
            bonds_t,
            max_bond_stretch * lengths.mean(dim=0),
            min_distance,
            ranges(lengths),
            triples,
            ranges(angles),
            window,
        )

    @classmethod
    def for_run(cls, frames: np.ndarray, bonds: np.ndarray, section: dict[str, Any]) -> Health:
        """The checks of a run configured by ``section`` (the config's ``simulate``:
        ``min_distance``, ``max_bond_stretch``, ``bonded_range_window`` in ps, checked
        every ``save_every`` steps of ``timestep``), limits from reference ``frames``."""
        interval = section["save_every"] * section["timestep"]
        return cls.from_reference(
            frames,
            bonds,
            min_distance=section["min_distance"],
            max_bond_stretch=section["max_bond_stretch"],
            window=round(section["bonded_range_window"] / interval),
        )

    def to(self, device: torch.device | str) -> Health:
        """The same checks with their tensors on ``device``."""
        return Health(
            self.bonds.to(device),
            self.max_bond_length.to(device),
            self.min_distance,
            self.bond_range.to(device),
            self.triples.to(device),
            self.angle_range.to(device),
            self.window,
        )

    @property
    def n_terms(self) -> int:
        """Bonds and angles whose range is checked."""
        return len(self.bonds) + len(self.triples)

    def check(
        self, positions: torch.Tensor, outside: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Codes [n_replicas] (int8, :data:`REASONS`; the first that applies) of positions
        [n_replicas, n_beads, 3], and the updated counters [n_replicas, n_terms] of
        consecutive checks each term has spent outside its range."""
        n_beads = positions.shape[1]
        finite = torch.isfinite(positions).all(dim=(1, 2))
        # Non-finite replicas are measured at the origin so that no NaN reaches a counter.
        safe = torch.where(finite.view(-1, 1, 1), positions, torch.zeros_like(positions))
        distances = torch.cdist(safe, safe) + 1e9 * torch.eye(n_beads, device=positions.device)
        collided = distances.amin(dim=(1, 2)) < self.min_distance
        lengths = torch.linalg.vector_norm(
            safe[:, self.bonds[:, 1]] - safe[:, self.bonds[:, 0]], dim=-1
        )
        stretched = (lengths > self.max_bond_length).any(dim=1)
        terms = torch.cat([lengths, bond_angles(safe, self.triples)], dim=1)
        limits = torch.cat([self.bond_range, self.angle_range])
        out = (terms < limits[:, 0]) | (terms > limits[:, 1])
        outside = torch.where(out, outside + 1, torch.zeros_like(outside))
        if self.window > 0:
            lingered = (outside >= self.window).any(dim=1)
        else:
            lingered = torch.zeros_like(collided)
        code = torch.full_like(finite, HEALTHY, dtype=torch.int8)
        for flag, value in (
            (lingered, BONDED_RANGE),
            (stretched, BOND_STRETCH),
            (collided, COLLISION),
            (~finite, NAN),
        ):  # the first reason that applies is written last
            code = torch.where(flag, torch.full_like(code, value), code)
        return code, outside

    def counters(self, n_replicas: int, device: torch.device | str) -> torch.Tensor:
        """Zeroed counters [n_replicas, n_terms] for :meth:`check`."""
        return torch.zeros(n_replicas, self.n_terms, dtype=torch.int32, device=device)
