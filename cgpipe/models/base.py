"""The model interface: an energy function of CG coordinates, its registry, its checkpoint.

A model maps CG positions [n_frames, n_beads, 3] (nm) to energies [n_frames] (kJ/mol);
forces (kJ/mol/nm) are -dE/dz by autograd, so they are conservative by construction.
A model is built on the fold's fitted physical :class:`~cgpipe.models.prior.Prior`
(CGnet, Wang et al. 2019) and keeps it as ``model.prior`` (the evaluate stage scores it
alone), or has none (the diffusion model: ``model.prior`` is ``None``).

A model is a class in a module of this package that subclasses :class:`EnergyModel`
and registers itself in :data:`MODELS`; its constructor takes ``bead_types``, ``prior``
(the prior's constructor arguments) and the options of its config section, all plain
JSON-able values, so that a checkpoint rebuilds it without pickles.

Checkpoint (``model.pt``, format 3): the zip archive of ``torch.save`` holding a dict of
plain types that ``torch.load(..., weights_only=True)`` reads:

- ``format_version`` (int, :data:`CHECKPOINT_FORMAT`),
- ``kind`` (the model's registered name),
- ``hparams`` (JSON text of the constructor arguments),
- ``state_dict`` (tensors),
- ``provenance`` (JSON text),
- ``temperature`` (float, K): the temperature the model was trained at, which its
  energies hold for (the prior is a Boltzmann inversion at it) and the simulate stage
  checks. Checkpoints written before it was recorded lack it; they still load.

Format 1 (cgpipe before the model registry) had no ``format_version`` and no ``kind``.
Format 2 kept the prior as one flat set of arguments (``bonds``, ``bond_k``, ...); format 3
keeps it as ``{"terms": {name: arguments}, "temperature": K}``, one entry per registered
prior term (:mod:`cgpipe.models.priors`), and its fit added the angle wall. Older formats
are refused, naming the file and the format: retrain.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io import Provenance, atomic_output
from cgpipe.io.checkpoint import read_checkpoint
from cgpipe.models.prior import Prior
from cgpipe.registry import Registry

CHECKPOINT_FORMAT = 3


class EnergyModel(nn.Module):
    """A CG force field: energies of CG positions, forces -dE/dz.

    Subclasses implement :meth:`energy`, call ``super().__init__(bead_types, prior)``
    first, and add their own constructor arguments to :attr:`hparams` with
    :meth:`record_hparams`, so that ``type(model)(**model.hparams)`` rebuilds the model.

    Parameters
    ----------
    bead_types
        [n_beads] integer bead types (0, 1, ...).
    prior
        Constructor arguments of :class:`~cgpipe.models.prior.Prior` (its ``hparams``),
        or ``None`` for a model without a prior.

    Attributes
    ----------
    name
        The registered name (set by :meth:`Registry.register`).
    samples
        How the model samples (class attribute): ``("dynamics",)``, its force field
        integrated by the simulate stage, for most; a model that also draws independent
        configurations (:meth:`sample`) adds ``"iid"``. Its schema section says the same in
        ``x-samples``, which the workflow reads.
    prior_overrides
        Keys of ``train.prior`` this model's prior is fitted with instead (class
        attribute; empty for most; the negative control drops the dihedral term).
    hparams
        The constructor arguments, JSON-able.
    prior
        The physical prior, or ``None``.
    bead_types
        [n_beads] long buffer.
    """

    name: ClassVar[str] = ""
    samples: ClassVar[tuple[str, ...]] = ("dynamics",)
    prior_overrides: ClassVar[Mapping[str, Any]] = {}
    prior: Prior | None

    def __init__(self, bead_types: Sequence[int], prior: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        types = [int(t) for t in bead_types]
        if not types or min(types) < 0:
            raise ValueError(f"bead_types must be non-negative integers, got {types}")
        self.hparams: dict[str, Any] = {
            "bead_types": types,
            "prior": dict(prior) if prior is not None else None,
        }
        self.register_buffer("bead_types", torch.tensor(types, dtype=torch.long))
        self.prior = Prior(**prior) if prior is not None else None

    def record_hparams(self, **arguments: Any) -> None:
        """Add a subclass's constructor arguments to :attr:`hparams`."""
        self.hparams.update(arguments)

    @classmethod
    def from_config(
        cls, section: Mapping[str, Any], *, bead_types: Sequence[int], prior: Prior
    ) -> EnergyModel:
        """Build the model from its config section and the fold's fitted prior.

        Parameters
        ----------
        section
            The model's section of the configuration (``models.<name>``); its ``trainer``
            key chooses the trainer and is not the model's.
        bead_types
            [n_beads] integer bead types of the mapping.
        prior
            The prior fitted to the fold's training frames.
        """
        options = {key: value for key, value in section.items() if key != "trainer"}
        return cls(bead_types=bead_types, prior=prior.hparams, **options)

    @property
    def n_beads(self) -> int:
        return int(self.bead_types.numel())

    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        """Energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3] (nm); what a
        model implements.

        Call the model (``model(positions)``) rather than this, so that the shape is
        checked.
        """
        raise NotImplementedError(f"{type(self).__qualname__} does not define energy()")

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        """Energies [n_frames] (kJ/mol) of positions [n_frames, n_beads, 3] (nm)."""
        if positions.dim() != 3 or positions.shape[1:] != (self.n_beads, 3):
            raise ValueError(
                f"positions have shape {tuple(positions.shape)}, "
                f"model expects [*, {self.n_beads}, 3]"
            )
        return self.energy(positions)

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

    def forces(self, positions: torch.Tensor) -> torch.Tensor:
        """Forces [n_frames, n_beads, 3] (kJ/mol/nm) = -dE/dz of positions (nm)."""
        return self.energy_and_forces(positions)[1]

    def sample(
        self,
        n_frames: int,
        *,
        generator: torch.Generator,
        batch_size: int = 1024,
        steps: int | None = None,
    ) -> torch.Tensor:
        """[n_frames, n_beads, 3] independent configurations (nm) of the model's
        equilibrium distribution, for a model whose :attr:`samples` includes ``"iid"``;
        ``steps``: the sampler's steps where it takes any (``None``: its own)."""
        raise InputError(
            f"model {self.name!r} samples by {', '.join(self.samples)} only, not i.i.d."
        )

    def prior_model(self) -> EnergyModel | None:
        """The model's prior alone, as a model on the same device (``None`` without one)."""
        if self.prior is None:
            return None
        from cgpipe.models.prior_model import PriorModel  # the one prior-only model

        alone = PriorModel(bead_types=self.hparams["bead_types"], prior=self.prior.hparams)
        alone.prior.load_state_dict(self.prior.state_dict())
        return alone.to(self.bead_types.device).train(self.training)


MODELS: Registry[type[EnergyModel]] = Registry("model", "cgpipe.models")


def force_rmse(
    model: EnergyModel, positions: torch.Tensor, forces: torch.Tensor, batch_size: int = 512
) -> float:
    """Root-mean-square error (kJ/mol/nm) per force component over frames.

    Parameters
    ----------
    model
        The force field.
    positions, forces
        [n_frames, n_beads, 3] in nm and kJ/mol/nm, on the model's device.
    batch_size
        Frames per evaluation.
    """
    squared, count = 0.0, 0
    for start in range(0, len(positions), batch_size):
        _, predicted = model.energy_and_forces(positions[start : start + batch_size])
        squared += float(((predicted - forces[start : start + batch_size]) ** 2).sum())
        count += predicted.numel()
    return math.sqrt(squared / max(count, 1))


def save_model(
    path: str | os.PathLike[str],
    model: EnergyModel,
    provenance: Provenance,
    *,
    temperature: float,
) -> None:
    """Write a checkpoint (format :data:`CHECKPOINT_FORMAT`) atomically, recording
    ``temperature`` (K), the temperature the model was trained at."""
    if model.name not in MODELS or MODELS.get(model.name) is not type(model):
        raise ValueError(f"{type(model).__qualname__} is not a registered model")
    checkpoint = {
        "format_version": CHECKPOINT_FORMAT,
        "kind": model.name,
        "hparams": json.dumps(model.hparams),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        keys.PROVENANCE: provenance.to_json(),
        keys.TEMPERATURE: float(temperature),
    }
    with atomic_output(path) as tmp:
        torch.save(checkpoint, tmp)


def _written_by(checkpoint: Mapping[str, Any]) -> str:
    try:
        return str(json.loads(checkpoint.get(keys.PROVENANCE, "{}")).get("cgpipe_version"))
    except (TypeError, ValueError):
        return "None"


def load_model(path: str | os.PathLike[str], device: str | torch.device = "cpu") -> EnergyModel:
    """Rebuild a model from its checkpoint without unpickling objects.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    InputError
        The file is not a cgpipe checkpoint, one of another checkpoint format, of a model
        kind that is not registered, or one that this version's models do not fit.
    """
    checkpoint = read_checkpoint(path)
    version = checkpoint.get("format_version")
    if version is None:
        raise InputError(
            f"{path}: written by cgpipe {_written_by(checkpoint)}, checkpoint format 1; retrain it"
        )
    if not isinstance(version, int) or version > CHECKPOINT_FORMAT:
        raise InputError(
            f"{path}: checkpoint format {version} (written by cgpipe {_written_by(checkpoint)}); "
            f"this cgpipe reads format {CHECKPOINT_FORMAT}: update cgpipe"
        )
    if version < CHECKPOINT_FORMAT:
        raise InputError(
            f"{path}: written by cgpipe {_written_by(checkpoint)}, checkpoint format {version}; "
            f"this cgpipe reads format {CHECKPOINT_FORMAT}: retrain it"
        )
    kind = checkpoint.get("kind")
    if not isinstance(kind, str) or kind not in MODELS:
        raise InputError(f"{path}: unknown model {kind!r}; known: {MODELS.names()}")
    try:
        model = MODELS.get(kind)(**json.loads(checkpoint["hparams"]))
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, ValueError, RuntimeError) as error:
        raise InputError(
            f"{path}: {kind} checkpoint written by cgpipe {_written_by(checkpoint)} does not "
            f"fit this version's models ({error}); retrain it"
        ) from error
    return model.to(device)
