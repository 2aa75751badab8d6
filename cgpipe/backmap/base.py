"""The backmapper interface and its registry.

A backmapper turns CG frames into all-atom frames. It is fitted per fold on the
all-atom frames of that fold's training trajectories only, never on a held-out one,
and then backmaps the CG frames a model simulated.

A new backmapper is one module of this package::

    @BACKMAPPERS.register("my_method")
    class MyMethod(Backmapper):
        def __init__(self, *, option): ...
        def fit(self, training, mapping, *, seed, device, checkpoint): ...
        def state(self): ...
        def restore(self, state, topology): ...
        def backmap(self, cg): ...

plus its section ``backmap.my_method`` in the config schema, whose keys are the
keyword-only options of its constructor.

A fitted backmapper is saved as a checkpoint like a model's (:func:`save_backmapper`):
its kind, its constructor's arguments, a format version and its state as plain tensors,
read back without unpickling objects (:func:`load_backmapper`).
"""

from __future__ import annotations

import abc
import json
import os
from typing import TYPE_CHECKING, Any, ClassVar

import mdtraj as md
import numpy as np
import pandas as pd

from cgpipe import keys
from cgpipe.errors import InputError
from cgpipe.io.atomic import atomic_output
from cgpipe.io.checkpoint import read_checkpoint
from cgpipe.registry import Registry

if TYPE_CHECKING:
    import torch

    from cgpipe.epochs import EpochCheckpoint
    from cgpipe.io import Provenance, TrajectoryData
    from cgpipe.mapping import Mapping

CHECKPOINT_FORMAT = 3
"""Version of the backmapper checkpoint's layout; a reader refuses other versions (2: the
flow keeps the width its starts were calibrated to; 3: the flow's hands cover every
stereocentre of :data:`~cgpipe.residues.STEREOCENTRES`, THR's and ILE's CB too)."""


class Backmapper(abc.ABC):
    """CG frames to all-atom frames, learned from a fold's training trajectories.

    The constructor takes the keys of the method's config section ``backmap.<name>``
    as keyword arguments, and nothing else.
    """

    name: ClassVar[str]
    hparams: dict[str, Any]
    """The constructor's keyword arguments (saved with the fitted state)."""
    samples: int = 1
    """Structures drawn per CG frame (1 for a deterministic method)."""
    control: ClassVar[bool] = False
    """A negative control: built to fail, so that a metric it passes is seen to judge
    nothing (the report says which)."""

    @abc.abstractmethod
    def fit(
        self,
        training: TrajectoryData,
        mapping: Mapping,
        *,
        seed: int = 0,
        device: str = "cpu",
        checkpoint: EpochCheckpoint | None = None,
    ) -> None:
        """Learn from all-atom frames (``seed`` seeds what it draws, ``device`` is where
        it trains, and a fit that runs epochs resumes from ``checkpoint``).

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
            [n_frames * samples, n_atoms, 3] all-atom positions (nm), a frame's samples
            together, and one row per structure with at least ``replica``, ``sample``
            (0 … samples - 1) and ``cg_rmsd`` (nm, between the CG frame and the mapped
            all-atom structure), plus columns of the method's own.
        """

    @abc.abstractmethod
    def state(self) -> dict[str, torch.Tensor]:
        """What was fitted, as named tensors (saved by :func:`save_backmapper`)."""

    @abc.abstractmethod
    def restore(self, state: dict[str, torch.Tensor], topology: md.Topology) -> None:
        """Take back a :meth:`state` fitted on frames of ``topology``."""


BACKMAPPERS: Registry[type[Backmapper]] = Registry("backmapper", "cgpipe.backmap")


def coordinate_map_for(
    training: TrajectoryData, mapping: Mapping, *, min_frames: int
) -> np.ndarray:
    """The mapping's Xi [n_beads, n_atoms] after checking that it maps the training
    frames' atoms and that there are at least ``min_frames`` of them."""
    xi = np.asarray(mapping.coordinate_map)
    if xi.shape != (mapping.n_beads, training.topology.n_atoms):
        raise InputError(
            f"the mapping maps {xi.shape[1]} atoms, the training frames have "
            f"{training.topology.n_atoms}"
        )
    if training.n_frames < min_frames:
        raise InputError(
            f"{training.n_frames} training frames to fit a backmapper on; it needs {min_frames}"
        )
    return xi


def bead_owners(frames: np.ndarray, xi: np.ndarray) -> np.ndarray:
    """[n_atoms] the bead each atom lies nearest to on average over all-atom frames
    [F, n_atoms, 3] (nm), beads mapped by Xi [n_beads, n_atoms]."""
    beads = np.einsum("ba,fad->fbd", xi, frames)
    return np.linalg.norm(frames[:, :, None] - beads[:, None], axis=-1).mean(0).argmin(1)


def onto_beads(x: torch.Tensor, beads: torch.Tensor, xi: np.ndarray) -> torch.Tensor:
    """Structures x [B, n_atoms, 3] moved the least (minimum-norm change) that maps each
    exactly onto its CG frame, beads [B, n_beads, 3]: Xi x = z."""
    import torch

    xi_t = torch.as_tensor(xi, dtype=x.dtype, device=x.device)
    correction = torch.linalg.solve(xi_t @ xi_t.T, torch.einsum("ba,fad->fbd", xi_t, x) - beads)
    return x - torch.einsum("ba,fbd->fad", xi_t, correction)


def samples_table(
    cg: TrajectoryData, positions: np.ndarray, xi: np.ndarray, samples: int
) -> pd.DataFrame:
    """The table of structures drawn ``samples`` per CG frame of ``cg`` (a frame's
    samples together): replica, sample, and the CG-space RMSD (nm) of each structure,
    mapped by Xi, to its CG frame."""
    from cgpipe.geometry import rmsd

    mapped = np.einsum("ba,fad->fbd", xi, positions)
    return pd.DataFrame(
        {
            keys.REPLICA: np.repeat(cg.trajectory_index, samples),
            keys.SAMPLE: np.tile(np.arange(samples), cg.n_frames),
            keys.CG_RMSD: rmsd(mapped, np.repeat(cg.coordinates, samples, axis=0)),
        }
    )


def save_backmapper(
    path: str | os.PathLike[str],
    backmapper: Backmapper,
    topology: md.Topology,
    provenance: Provenance,
) -> None:
    """Write a fitted backmapper atomically: format, kind, arguments, state, provenance,
    and the all-atom topology it was fitted on (mdtraj's JSON, so it needs no pickle)."""
    import torch

    topology_text = json.dumps(md.formats.HDF5TrajectoryFile.convert_topology_to_dict(topology))
    checkpoint = {
        "format_version": CHECKPOINT_FORMAT,
        "kind": backmapper.name,
        "hparams": json.dumps(backmapper.hparams),
        "state_dict": {k: v.detach().cpu() for k, v in backmapper.state().items()},
        "topology": topology_text,
        keys.PROVENANCE: provenance.to_json(),
    }
    with atomic_output(path) as tmp:
        torch.save(checkpoint, tmp)


def load_backmapper(path: str | os.PathLike[str]) -> tuple[Backmapper, md.Topology]:
    """A fitted backmapper and its all-atom topology, rebuilt from its checkpoint.

    Raises
    ------
    InputError
        Not a backmapper checkpoint, another format version, or an unknown kind.
    """
    from cgpipe.io.trajectory import topology_from_dict

    checkpoint = read_checkpoint(path)
    version = checkpoint.get("format_version")
    if version != CHECKPOINT_FORMAT or "topology" not in checkpoint:
        raise InputError(
            f"{path}: backmapper checkpoint format {version}; this cgpipe reads "
            f"{CHECKPOINT_FORMAT}: fit it again"
        )
    kind = checkpoint.get("kind")
    if kind not in BACKMAPPERS:
        raise InputError(f"{path}: unknown backmapper {kind!r}; known: {BACKMAPPERS.names()}")
    backmapper = BACKMAPPERS.get(kind)(**json.loads(checkpoint["hparams"]))
    topology = topology_from_dict(json.loads(checkpoint["topology"]))
    backmapper.restore(checkpoint["state_dict"], topology)
    return backmapper, topology
