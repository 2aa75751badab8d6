"""The ``autograin`` map: a CG map learned as the encoder of a linear auto-encoder.

Autograin (Wang & Gomez-Bombarelli, npj Comput. Mater. 5, 125 (2019)) learns which atoms
form each bead by reconstructing the all-atom positions from the bead positions.

Encoder
    Learnable logits L [n_heavy, n_beads]; each optimisation step draws a soft assignment
    C_heavy = gumbel_softmax(L, T) (one Gumbel sample per step, shared by the batch's
    frames). Hydrogens are not assigned on their own: an atom's row of C is its heavy
    atom's (a hydrogen's is the heavy atom it is bonded to). A bead boundary through an
    X-H bond would cut the fastest, stiffest (often constrained) motion of the molecule,
    and the hydrogens' positions add nothing a bead needs; so the search is over heavy
    atoms only and the exported map keeps every hydrogen with its heavy atom.
Coordinate map
    Xi[b, a] = C[a, b] w_a / sum_a' C[a', b] w_a', with w the atomic masses (``centre:
    mass``) or ones (``geometry``): each bead sits at the weighted centre of its soft
    share of atoms, z = Xi x.
Decoder
    Learnable D [n_atoms, n_beads] with rows summing to 1 (D = D_raw - rowmean(D_raw) +
    1/n_beads), x_hat = D z. Acting alike on the three coordinates and preserving a
    common shift, the auto-encoder is translation- and rotation-equivariant, so frames
    need no alignment.
Loss
    ``<|x - x_hat|^2>`` (nm^2: the mean over frames and atoms of the squared distance)
    plus ``force_weight * <|F_cg|^2>`` ((kJ/mol/nm)^2, the mean over frames and beads),
    where F_cg = C^T f sums each atom's force into the beads by its assignment weights:
    the instantaneous mean force of the soft map. Penalising it prefers maps whose mapped
    forces are small, i.e. whose beads enclose the stiff internal forces and leave a
    smooth CG free-energy landscape; ``force_weight`` is in nm^4 mol^2 / kJ^2. The term
    has a trivial minimiser: the forces on an isolated molecule sum to zero, so a bead
    holding every atom has no mapped force. On alanine dipeptide with 3 beads, weights of
    1e-8 and above drive a bead empty (the export then refills it with one atom, a poor
    map); the default 1e-9 adds about 15 % to the reconstruction loss and leaves the
    learned map that of the reconstruction alone.
Annealing
    The Gumbel-softmax temperature falls exponentially from ``temperature_start`` in the
    first epoch to ``temperature_end`` in the last, T_e = T_0 (T_end / T_0)^(e / (E - 1)),
    so the soft assignment hardens towards a partition while training. Adam, frames
    shuffled every epoch, ``batch_size`` frames per step; the final epoch's parameters are
    kept (the lowest temperature: the soft map nearest the exported hard one).
Connectivity
    Every bead of the exported map must be a bonded group of atoms, but reconstruction
    alone favours disconnected beads (a bead on both ends of the molecule tells the
    decoder about both): trained freely on 90 alanine-dipeptide frames, the argmax of
    the logits had up to 7 pieces for 4 beads, and the repaired map was then worse than
    any of 10 random connected ones. So after each
    epoch the logits are projected onto connected maps (not in the paper): each heavy atom
    that the export below would move swaps its logits of the old and the new bead, so the
    argmax is always a connected map and training continues from it (the ``fit_table``
    column ``connectivity_moves`` counts the atoms moved per epoch).
Validation
    The last ``validation_fraction`` of the (at most ``max_frames``, evenly spread)
    training frames in trajectory order are not fitted; after each epoch they are scored
    with the noiseless assignment softmax(L / T) of that epoch's temperature.
Export
    Each heavy atom joins its bead of largest logit (argmax, a hard partition). A bead
    split into pieces not bonded to each other keeps its largest piece; every other piece
    moves to the bonded bead whose logit is largest for it
    (:func:`~cgpipe.mapping.groups.make_connected`). A bead no heavy atom chose is refilled
    with the heavy atom that prefers it most (the largest logit difference to its own
    bead) among those whose removal leaves a bead of several atoms connected, so the map
    always has exactly ``n_beads`` bonded beads (after the last epoch's projection the
    argmax already is that map). Hydrogens then join their heavy atom, and the beads sit
    at their groups' centres of mass (or geometry) with aggregated forces
    (:func:`~cgpipe.mapping.groups.group_mapping`).

With ``n_beads: null`` the number of beads is the k-means elbow's (the ``kmeans`` section's
rule, :meth:`cgpipe.mapping.kmeans.KMeansMap.choose_k`) on the same training frames.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import mdtraj as md
import numpy as np
import pandas as pd
import torch

from cgpipe import keys
from cgpipe.data import evenly
from cgpipe.epochs import EpochScores, run_epochs
from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData
from cgpipe.mapping.base import MAPPINGS, Mapping, MappingMethod
from cgpipe.mapping.groups import (
    CENTRES,
    atom_masses,
    attach_hydrogens,
    components,
    group_mapping,
    heavy_atoms,
    make_connected,
    neighbours,
)

log = logging.getLogger(__name__)

# fit_table columns beyond keys.EPOCH and keys.LOSS.
TEMPERATURE = "temperature"
RECONSTRUCTION = "reconstruction"  # nm^2, training frames, <|x - x_hat|^2>
FORCE = "force"  # (kJ/mol/nm)^2, training frames, <|C^T f|^2>
VALIDATION_RECONSTRUCTION = "validation_reconstruction"
VALIDATION_FORCE = "validation_force"
CONNECTIVITY_MOVES = "connectivity_moves"  # heavy atoms the epoch's projection moved
N_BEADS = "n_beads"
N_BEADS_FROM_ELBOW = "n_beads_from_elbow"  # True: the k-means elbow chose n_beads


def temperatures(start: float, end: float, epochs: int) -> np.ndarray:
    """[epochs] the Gumbel-softmax temperature of each epoch: exponential from ``start``
    (first epoch) to ``end`` (last)."""
    return start * (end / start) ** (np.arange(epochs) / max(epochs - 1, 1))


class AutoEncoder(torch.nn.Module):
    """The linear auto-encoder over one topology: assignment logits and decoder.

    Parameters
    ----------
    owner
        [n_atoms] the heavy-atom slot (0 … n_heavy - 1) whose assignment each atom takes.
    weights
        [n_atoms] each atom's weight in its bead's centre (masses in amu, or ones).
    n_beads
        The number of beads.
    """

    def __init__(self, owner: torch.Tensor, weights: torch.Tensor, n_beads: int) -> None:
        super().__init__()
        n_heavy = int(owner.max()) + 1
        self.register_buffer("owner", owner)
        self.register_buffer("weights", weights)
        self.logits = torch.nn.Parameter(
            float(__import__("os").environ.get("AGS", "1")) * torch.randn(n_heavy, n_beads)
        )
        self.decoder_raw = torch.nn.Parameter(0.01 * torch.randn(len(owner), n_beads))

    @property
    def decoder(self) -> torch.Tensor:
        """[n_atoms, n_beads] D, each row summing to 1."""
        raw = self.decoder_raw
        return raw - raw.mean(dim=1, keepdim=True) + 1.0 / raw.shape[1]

    def assignment(self, temperature: float, *, noisy: bool) -> torch.Tensor:
        """[n_atoms, n_beads] the soft assignment C (rows sum to 1): a Gumbel-softmax sample
        when ``noisy``, else softmax(L / T)."""
        if noisy:
            heavy = torch.nn.functional.gumbel_softmax(self.logits, tau=temperature, dim=-1)
        else:
            heavy = torch.softmax(self.logits / temperature, dim=-1)
        return heavy[self.owner]

    def losses(
        self, assignment: torch.Tensor, x: torch.Tensor, f: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(<|x - x_hat|^2> in nm^2, <|C^T f|^2> in (kJ/mol/nm)^2, NaN without forces)
        of frames x, f [n_frames, n_atoms, 3] under the assignment C."""
        weighted = assignment * self.weights[:, None]
        xi = (weighted / weighted.sum(dim=0).clamp_min(1e-12)).T
        z = torch.einsum("ba,fad->fbd", xi, x)
        x_hat = torch.einsum("ab,fbd->fad", self.decoder, z)
        reconstruction = ((x - x_hat) ** 2).sum(dim=-1).mean()
        if f is None:
            return reconstruction, torch.full((), math.nan)
        force = (torch.einsum("ab,fad->fbd", assignment, f) ** 2).sum(dim=-1).mean()
        return reconstruction, force


@MAPPINGS.register("autograin")
class Autograin(MappingMethod):
    """A Gumbel-softmax auto-encoder's hard assignment, made connected.

    Parameters
    ----------
    n_beads
        The number of beads; ``None`` takes the k-means elbow's k (``elbow``).
    epochs, batch_size, learning_rate
        Passes over the training frames, frames per Adam step, Adam's learning rate.
    temperature_start, temperature_end
        The Gumbel-softmax temperature of the first and last epoch.
    force_weight
        Weight of the instantaneous mean-force regulariser, nm^4 mol^2 / kJ^2.
    validation_fraction
        The fraction of the used training frames (the last, in trajectory order) scored,
        not fitted, every epoch.
    max_frames
        At most this many training frames are used, spread evenly.
    centre
        Beads at their atoms' centre of ``"mass"`` or of ``"geometry"``.
    elbow
        The k-means method whose ``choose_k`` picks ``n_beads`` when it is ``None``
        (:meth:`from_config` passes the ``kmeans`` section's); without it, the k-means
        defaults.

    Attributes
    ----------
    fit_table
        After :meth:`build`: one row per epoch (``epoch, temperature, reconstruction,
        force, loss, validation_reconstruction, validation_force, connectivity_moves,
        n_beads, n_beads_from_elbow``).
    elbow_table
        After a :meth:`build` whose ``n_beads`` came from the elbow, its table.
    """

    fitted = True

    def __init__(
        self,
        *,
        n_beads: int | None = None,
        epochs: int = 200,
        batch_size: int = 256,
        learning_rate: float = 0.01,
        temperature_start: float = 1.0,
        temperature_end: float = 0.05,
        force_weight: float = 1e-9,
        validation_fraction: float = 0.1,
        max_frames: int = 20000,
        centre: str = "mass",
        elbow: Any = None,
    ) -> None:
        integer, number = self.integer_option, self.number_option
        self.n_beads = None if n_beads is None else integer("n_beads", n_beads, 2)
        self.epochs = integer("epochs", epochs, 1)
        self.batch_size = integer("batch_size", batch_size, 1)
        self.learning_rate = number("learning_rate", learning_rate, positive=True)
        self.temperature_start = number("temperature_start", temperature_start, positive=True)
        self.temperature_end = number("temperature_end", temperature_end, positive=True)
        self.force_weight = number("force_weight", force_weight, positive=False)
        self.validation_fraction = number(
            "validation_fraction", validation_fraction, positive=False
        )
        if self.validation_fraction >= 1:
            raise InputError(
                f"mapping.autograin.validation_fraction must be < 1, got {validation_fraction}"
            )
        self.max_frames = integer("max_frames", max_frames, 1)
        self.centre = self.choice_option("centre", centre, CENTRES)
        self.elbow = elbow
        self.elbow_table: pd.DataFrame | None = None

    @classmethod
    def from_config(cls, sections: dict[str, Any]) -> Autograin:
        """Autograin's section; with ``n_beads`` null, the ``kmeans`` section's elbow rule."""
        section = dict(sections.get(cls.name, {}))
        if section.get("n_beads") is None:
            from cgpipe.mapping.kmeans import KMeansMap

            section["elbow"] = KMeansMap(**sections.get("kmeans", {}))
        return cls(**section)

    def _choose_n_beads(self, topology: md.Topology, training: TrajectoryData, seed: int) -> int:
        elbow = self.elbow
        if elbow is None:  # built without from_config: the kmeans section's defaults
            from cgpipe.mapping.kmeans import KMeansMap

            elbow = KMeansMap()
        n_beads, self.elbow_table = elbow.choose_k(topology, training, seed=seed)
        log.info("autograin: the k-means elbow chose %d beads", n_beads)
        return int(n_beads)

    def _frames(self, training: TrajectoryData) -> tuple[np.ndarray, np.ndarray]:
        """(fitted, validation) frame indices: at most max_frames in trajectory order, the
        last validation_fraction of them held for validation."""
        ordered = np.argsort(training.trajectory_index, kind="stable")
        used = evenly(ordered, self.max_frames)
        n_validation = 0
        if self.validation_fraction > 0:
            n_validation = min(len(used) - 1, math.ceil(self.validation_fraction * len(used)))
        return used[: len(used) - n_validation], used[len(used) - n_validation :]

    def build(
        self, topology: md.Topology, training: TrajectoryData | None, *, seed: int = 0
    ) -> Mapping:
        if training is None or training.n_frames == 0:
            raise InputError("mapping 'autograin' is fitted to training frames; none were given")
        if training.topology.n_atoms != topology.n_atoms:
            raise ValueError(
                f"training frames have {training.topology.n_atoms} atoms, the topology "
                f"{topology.n_atoms}"
            )
        if training.forces is None and self.force_weight > 0:
            raise InputError(
                "mapping.autograin.force_weight > 0 needs forces; the training frames have none"
            )
        heavy = heavy_atoms(topology)
        from_elbow = self.n_beads is None
        n_beads = self._choose_n_beads(topology, training, seed) if from_elbow else self.n_beads
        if not 2 <= n_beads <= len(heavy):
            raise InputError(
                f"mapping.autograin.n_beads: {n_beads} beads, but the topology has "
                f"{len(heavy)} heavy atoms (at least 2 beads, at most one per heavy atom)"
            )
        owner = attach_hydrogens(topology, {int(atom): slot for slot, atom in enumerate(heavy)})
        fitted, validation = self._frames(training)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model, records = self._train(
                topology, training, heavy, owner, n_beads, fitted, validation
            )
        self.fit_table = pd.DataFrame(records).assign(
            **{N_BEADS: n_beads, N_BEADS_FROM_ELBOW: from_elbow}
        )
        logits = model.logits.detach().numpy().astype(np.float64)
        labels = export_labels(topology, heavy, logits)
        return group_mapping(self.name, topology, labels, self.centre)

    def _train(
        self,
        topology: md.Topology,
        training: TrajectoryData,
        heavy: np.ndarray,
        owner: np.ndarray,
        n_beads: int,
        fitted: np.ndarray,
        validation: np.ndarray,
    ) -> tuple[AutoEncoder, list[dict[str, Any]]]:
        """The trained auto-encoder and one record per epoch (the global torch RNG, seeded
        by the caller, draws the initial parameters, the shuffles and the Gumbel noise)."""
        weights = atom_masses(topology) if self.centre == "mass" else np.ones(topology.n_atoms)
        model = AutoEncoder(
            torch.as_tensor(owner, dtype=torch.int64),
            torch.as_tensor(weights, dtype=torch.float32),
            n_beads,
        )
        # The loss is translation-invariant; frames about their own centre keep float32
        # sums of positions small and exact.
        positions = training.coordinates - training.coordinates.mean(axis=1, keepdims=True)
        x_fit = torch.as_tensor(positions[fitted])
        x_valid = torch.as_tensor(positions[validation])
        f_fit = f_valid = None
        if training.forces is not None:
            f_fit = torch.as_tensor(training.forces[fitted])
            f_valid = torch.as_tensor(training.forces[validation])
        optimizer = torch.optim.Adam(model.parameters(), lr=self.learning_rate)
        schedule = temperatures(self.temperature_start, self.temperature_end, self.epochs)
        n_fit = len(x_fit)

        def epoch_step(epoch: int) -> EpochScores:
            temperature = float(schedule[epoch])
            order = torch.randperm(n_fit)
            sums = np.zeros(2)
            for start in range(0, n_fit, self.batch_size):
                batch = order[start : start + self.batch_size]
                assignment = model.assignment(temperature, noisy=True)
                reconstruction, force = model.losses(
                    assignment, x_fit[batch], None if f_fit is None else f_fit[batch]
                )
                loss = reconstruction
                if self.force_weight > 0:
                    loss = loss + self.force_weight * force
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                sums += len(batch) * np.array([reconstruction.item(), force.item()])
            reconstruction, force = (float(v) for v in sums / n_fit)
            moves = project_connected(model.logits, topology, heavy)
            valid = (math.nan, math.nan)
            if len(x_valid):
                with torch.no_grad():
                    scored = model.losses(
                        model.assignment(temperature, noisy=False), x_valid, f_valid
                    )
                valid = tuple(float(v) for v in scored)
            total = reconstruction + (self.force_weight * force if self.force_weight > 0 else 0.0)
            record = {
                keys.EPOCH: epoch,
                TEMPERATURE: temperature,
                RECONSTRUCTION: reconstruction,
                FORCE: force,
                keys.LOSS: total,
                VALIDATION_RECONSTRUCTION: valid[0],
                VALIDATION_FORCE: valid[1],
                CONNECTIVITY_MOVES: moves,
            }
            return EpochScores([record], total)

        # The temperature anneals over the epochs: the last epoch's map is the one kept.
        outcome = run_epochs(
            self.epochs,
            epoch_step,
            model=model,
            stateful={"optimizer": optimizer},
            select=False,
            desc="autograin",
            checkpoint=self.checkpoint,
        )
        records = outcome.records
        last = records[-1]
        log.info(
            "autograin: %d beads, %d epochs on %d frames; final reconstruction %.4g nm^2 "
            "(validation %.4g on %d frames), mapped force %.4g (kJ/mol/nm)^2",
            n_beads,
            self.epochs,
            n_fit,
            last[RECONSTRUCTION],
            last[VALIDATION_RECONSTRUCTION],
            len(x_valid),
            last[FORCE],
        )
        return model, records


def connected_beads(topology: md.Topology, heavy: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """[n_heavy] the bead (logit column) of each heavy atom in the hard map of the logits:
    argmax per heavy atom, made connected, empty beads refilled.

    Parameters
    ----------
    topology
        The all-atom topology (bonds included).
    heavy
        [n_heavy] the heavy atoms' indices, in the order of the logits' rows.
    logits
        [n_heavy, n_beads] assignment logits (larger: more probable).

    Returns
    -------
    numpy.ndarray
        [n_heavy] beads 0 … n_beads - 1, every bead used and a bonded group of atoms.
    """
    n_beads = logits.shape[1]
    slot = {int(atom): index for index, atom in enumerate(heavy)}
    # Beads by their rank among the chosen ones: make_connected wants labels 0 … k - 1.
    chosen, ranks = np.unique(logits.argmax(axis=1), return_inverse=True)
    labels = np.full(topology.n_atoms, -1, dtype=np.int64)
    labels[heavy] = ranks

    def most_probable(atom: int, candidates: list[int]) -> int:
        return max(candidates, key=lambda label: (logits[slot[atom], chosen[label]], -label))

    bead_of = chosen[make_connected(topology, labels, most_probable)[heavy]]
    bonded = neighbours(topology)
    for bead in sorted(set(range(n_beads)) - set(bead_of.tolist())):
        best, best_gain = None, -math.inf
        for index, atom in enumerate(heavy):
            own = bead_of[index]
            rest = [int(a) for a in heavy[bead_of == own] if a != atom]
            if not rest or len(components(bonded, rest)) != 1:
                continue  # the atom is its bead, or holds it together
            gain = logits[index, bead] - logits[index, own]
            if gain > best_gain:
                best, best_gain = index, gain
        if best is None:
            raise ValueError(f"autograin: no heavy atom can refill the empty bead {bead}")
        bead_of[best] = bead
    return bead_of


def project_connected(logits: torch.Tensor, topology: md.Topology, heavy: np.ndarray) -> int:
    """Make the argmax of ``logits`` [n_heavy, n_beads] the connected hard map
    (:func:`connected_beads`), in place, by swapping each moved atom's logits of its old and
    new bead; returns the number of heavy atoms moved."""
    values = logits.detach().numpy().astype(np.float64)
    argmax = values.argmax(axis=1)
    beads = connected_beads(topology, heavy, values)
    moved = np.flatnonzero(beads != argmax)
    if len(moved):
        target = beads[moved]
        rows = torch.as_tensor(moved)
        old, new = torch.as_tensor(argmax[moved]), torch.as_tensor(target)
        with torch.no_grad():
            held = logits[rows, old].clone()
            logits[rows, old] = logits[rows, new]
            logits[rows, new] = held
    return len(moved)


def export_labels(topology: md.Topology, heavy: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """[n_atoms] the hard map of assignment logits (:func:`connected_beads`), each hydrogen
    with its heavy atom."""
    bead_of = connected_beads(topology, heavy, logits)
    moved = int((bead_of != logits.argmax(axis=1)).sum())
    if moved:
        log.info("autograin: %d heavy atoms moved from their most probable bead", moved)
    return attach_hydrogens(topology, {int(a): int(b) for a, b in zip(heavy, bead_of, strict=True)})
