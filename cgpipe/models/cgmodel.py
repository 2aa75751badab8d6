"""The CG force field: prior plus an optional network, and its checkpoint format.

A checkpoint (``model.pt``) is a dict of plain types that ``torch.load(...,
weights_only=True)`` reads: the ``state_dict``, the constructor arguments as JSON
text, and the provenance record. Nothing is unpickled.
"""

from __future__ import annotations

import json
import os
from typing import Any

import torch
from torch import nn

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io import Provenance, atomic_output
from cgpipe.io.checkpoint import read_checkpoint
from cgpipe.models.prior import Prior
from cgpipe.models.schnet import SchNet

MODEL_NAMES = ("cgschnet", "prior")


class CGModel(nn.Module):
    """E(x) = prior(x) + network(types, x), forces -dE/dx.

    Parameters
    ----------
    bead_types
        [n_beads] integer bead types.
    prior
        Constructor arguments of :class:`Prior`.
    schnet
        Constructor arguments of :class:`SchNet`, or ``None`` for the prior alone.
    """

    def __init__(
        self, bead_types: list[int], prior: dict[str, Any], schnet: dict[str, Any] | None = None
    ) -> None:
        super().__init__()
        self.hparams = {"bead_types": list(map(int, bead_types)), "prior": prior, "schnet": schnet}
        self.register_buffer(
            "bead_types", torch.tensor(self.hparams["bead_types"], dtype=torch.long)
        )
        self.prior = Prior(**prior)
        self.network = SchNet(**schnet) if schnet is not None else None

    @property
    def n_beads(self) -> int:
        return int(self.bead_types.numel())

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """Energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3] (nm)."""
        if positions.shape[1:] != (self.n_beads, 3):
            raise ValueError(
                f"positions have shape {tuple(positions.shape)}, "
                f"model expects [*, {self.n_beads}, 3]"
            )
        energy = self.prior(positions)
        if self.network is not None:
            energy = energy + self.network(self.bead_types, positions)
        return energy

    def energy_and_forces(
        self, positions: torch.Tensor, create_graph: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Energies [n_frames] (kJ/mol) and forces [n_frames, n_beads, 3] (kJ/mol/nm).

        ``create_graph=True`` keeps the graph of the forces so that a loss on them can be
        differentiated again (training).
        """
        with torch.enable_grad():
            if not positions.requires_grad:
                positions = positions.detach().requires_grad_(True)
            energy = self(positions)
            (gradient,) = torch.autograd.grad(energy.sum(), positions, create_graph=create_graph)
        return energy, -gradient


def build_model(name: str, bead_types: list[int], prior: Prior, schnet: dict[str, Any]) -> CGModel:
    """A model of the registry by name: ``cgschnet`` (prior + SchNet) or ``prior``."""
    if name not in MODEL_NAMES:
        raise InputError(f"unknown model {name!r}; known: {MODEL_NAMES}")
    network = None
    if name == "cgschnet":
        network = {"num_types": int(max(bead_types)) + 1, **schnet}
    return CGModel(bead_types, prior.hparams, network)


def save_model(path: str | os.PathLike[str], model: CGModel, provenance: Provenance) -> None:
    """Write a checkpoint atomically."""
    checkpoint = {
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "hparams": json.dumps(model.hparams),
        keys.PROVENANCE: provenance.to_json(),
    }
    with atomic_output(path) as tmp:
        torch.save(checkpoint, tmp)


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> CGModel:
    """Rebuild a model from its checkpoint without unpickling objects.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    InputError
        The file is not a cgpipe checkpoint, or one that this version's models do not fit.
    """
    checkpoint = read_checkpoint(path)
    try:
        model = CGModel(**json.loads(checkpoint["hparams"]))
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        written_by = json.loads(checkpoint.get(keys.PROVENANCE, "{}")).get("cgpipe_version")
        raise InputError(
            f"{path}: checkpoint written by cgpipe {written_by} does not fit this version's "
            f"models ({error}); retrain it"
        ) from error
    return model.to(device)
