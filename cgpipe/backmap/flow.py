"""A generative, E(3)-equivariant backmapper: conditional flow matching with an EGNN.

Why a flow. A conditional flow (Lipman et al. 2023; FlowBack, Jones et al. 2025) is
trained by plain regression, needs neither a variational bound nor a noise schedule, and
draws in a few tens of Euler steps; a VAE (GenZProt) needs an encoder and a latent prior
besides the decoder. The flow here starts every atom in a Gaussian of width ``noise``
(nm) around the bead it belongs to and carries it, in ``steps`` Euler steps of a learned
velocity, to an all-atom structure; the beads stay where the CG frame puts them.

Why it is equivariant. The velocity is the coordinate update of an EGNN (Satorras et al.
2021) over atoms and beads: messages are functions of node features and distances only,
and each atom moves along sums of relative vectors. Rotating, translating or mirroring
the CG frame and the starting atoms rotates, translates or mirrors the path; the starting
Gaussian is isotropic, so the draws are equivariant in distribution.

Chirality. A mirror-equivariant network cannot prefer a hand by itself: where the CG
frame does not fix a stereocentre (its CB side defines no bead), the frame and its mirror
image through the centre's N-CA-C plane look alike, and a flow trained on L targets alone
would learn their average. So in training each such free centre's target takes the hand
its starting atoms have (its CB side reflected through the N-CA-C plane if need be), which
an equivariant flow can learn; and in drawing, where at least
:data:`~cgpipe.backmap.scoring.HANDED` of the training frames agree on the centre's hand
(:func:`~cgpipe.backmap.quality.chirality`; at CA the sign of (N - CA) x (C - CA) .
(CB - CA)), a centre of the other hand is mended at the end by the same reflection, as
FlowBack reflects D-residues. The centres are those of
:data:`~cgpipe.residues.STEREOCENTRES`: THR's and ILE's CB are mended like a CA, their
CG2 side reflected through the plane of CB and its other two heavy substituents.
(Mending after every Euler step as well, as FlowBack does, left a third of the rebuilt
rigid toy 0.05 nm or more off: the flow carries a start to the hand of that start, not of
a mended midpoint.) ``fix_chirality: false`` turns the mending off. A centre whose moving
side defines a bead takes its hand from the CG frame.

Constraints. A flow's bonds come out a few per cent off their lengths (regression to a
velocity leaves a spread that a bond, stiff in the real molecule, does not have). Every
drawn structure is therefore moved, after the fit onto its beads, so that each pair of
atoms one or two bonds apart lies at its mean distance in the training frames (its
bond length, and through the 1-3 distance its bond angle), by sweeps of SHAKE-like
corrections (:func:`constrain_distances`), each followed by the fit onto the beads again
(an atom that is a bead by itself does not move): what SHAKE does to a molecular
dynamics step, done to a drawn structure. In each sweep the bonds come last, so that
where the targets cannot all be met the bonds are, and heavy atoms more than two bonds
apart that have come closer than :data:`CLASH` are first pushed apart to it
(:func:`separate`), an inequality in the same sweeps. ``constrain: 0`` leaves the
structure as drawn.

Training. Flow matching on pairs (CG frame of a training frame, the frame): x_t = (1 - t)
x_0 + t x_1, target velocity x_1 - x_0; plus, on the clean structure the velocity
predicts, x_t + (1 - t) v, losses on bond lengths and bond angles (against the true
frame's) and on heavy-atom clashes, weighted by t^2 (the prediction is only sharp near
the end of the path). No rotation augmentation is needed: the network is equivariant.

Spread. A flow fitted in a few epochs carries its starts less far together than the data
are: its draws for one CG frame lie farther from each other than from the true frame
(diversity below 0), so each draw is a worse guess than its spread claims. Narrowing the
starting Gaussian at drawing (Kingma & Dhariwal's temperature of a flow's base
distribution) narrows the draws. After the fit, :meth:`FlowBackmapper.calibrate` finds the
widest start (at most the training width) whose draws lie no farther from each other than
``1 - diversity`` times their distance from the truth, on average over the frames of each
training trajectory in turn, those fitted on and the validation one. Draws of the same
conditional distribution as the truth score a diversity of 0 on average. Calibrated on
the validation trajectory alone, a fold's held-out score scattered about it by 0.1 on
ala2 and by up to 0.25 on chignolin (fold 1: +0.13 on validation, -0.07 held out): one
trajectory does not predict another. The frames fitted on are those the flow rebuilds
best, so asking the target of every training trajectory keeps held-out frames at or
above it unless they are easier than those; the default target, 0.1, is for Gaussian
draws a spread 18 % narrower than the truth's around their centre. ``spread`` set to a
number fixes the width instead (1: the training width).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import mdtraj as md
import numpy as np
import pandas as pd
import torch
from torch import nn

from cgpipe import keys
from cgpipe.backmap.base import (
    BACKMAPPERS,
    Backmapper,
    bead_owners,
    coordinate_map_for,
    onto_beads,
    samples_table,
)
from cgpipe.backmap.quality import Geometry, diversity, sample_rmsds
from cgpipe.backmap.scoring import Standard
from cgpipe.data import evenly
from cgpipe.epochs import EpochCheckpoint, EpochScores, run_epochs
from cgpipe.errors import InputError
from cgpipe.io import TrajectoryData

log = logging.getLogger(__name__)

CLASH = 0.25
"""Heavy-atom contact distance (nm) below which the clash loss penalises a pair."""
FINE = 0.01
"""Scale (nm) of a bonded or geminal pair's deviation from its mean distance, as the
network sees it."""
CALIBRATION_FRAMES = 16
"""Frames (spread evenly) of each training trajectory, those fitted on and the
validation one alike, that the start's width is calibrated on."""
CALIBRATION_STEPS = 4
"""Bisections (in log width, between :data:`NARROWEST` and 1) of the calibration."""
NARROWEST = 0.125
"""The narrowest start the calibration considers, as a fraction of ``noise``."""
CHECK_EVERY = 10
"""Sweeps between the constraints' updates of which heavy-atom pairs are near contact."""
NEAR = 0.1
"""How much farther than :data:`CLASH` (nm) a heavy-atom pair may be at a check and still
be watched for contact until the next."""
SIDE_WIDTH = 0.01
"""How far (in units of the sums' lengths) d must lie off the plane of a and b for the
unit normal to take its full length."""


def _mlp(n_in: int, width: int, n_out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, width), nn.SiLU(), nn.Linear(width, n_out))


class EGNNLayer(nn.Module):
    """One E(n)-equivariant layer: invariant messages, residual feature updates, and two
    coordinate updates.

    The first is EGNN's: a sum of relative vectors, each scaled by a function of its
    message (normalised as in EGNN's stable variant). Sums of relative vectors move an
    atom off the plane of its neighbours only in proportion to how far off it already
    is, so the second moves it along a unit normal: of two learned sums of relative
    vectors a and b, n = a x b, turned to the side where a third, d, lies,
    u = sign(n . d) n / |n| (smoothed within ``SIDE_WIDTH``). n flips with a
    reflection and so does n . d, so u is a true vector and the layer stays equivariant
    under rotations, translations and reflections alike.
    """

    def __init__(self, width: int, edge_features: int) -> None:
        super().__init__()
        self.message = nn.Sequential(_mlp(2 * width + edge_features, width, width), nn.SiLU())
        # Per edge: the weight of its relative vector in the shift, and in a, b and d.
        self.weights = _mlp(width, width, 4)
        self.normal = _mlp(2 * width, width, 1)  # how far along the unit normal
        self.update = _mlp(2 * width, width, width)
        with torch.no_grad():  # start near the identity map of coordinates
            self.weights[-1].weight[0].mul_(1e-3)
            self.weights[-1].bias[0].zero_()
            self.normal[-1].weight.mul_(1e-3)
            self.normal[-1].bias.zero_()

    def forward(
        self,
        h: torch.Tensor,
        x: torch.Tensor,
        edges: torch.Tensor,
        edge_attr: torch.Tensor,
        movable: torch.Tensor,
        degree: float,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        sender, receiver = edges
        m = self.message(torch.cat([h[receiver], h[sender], edge_attr], dim=-1))
        relative = x[receiver] - x[sender]
        length = relative.norm(dim=-1, keepdim=True)
        direction = relative / (length + 0.1)
        weights = self.weights(m)  # [E, 4]
        sums = torch.zeros(len(x), 4, 3, dtype=x.dtype, device=x.device)
        sums.index_add_(0, receiver, weights[:, :, None] * direction[:, None, :])
        shift, a, b, d = sums[:, 0] / degree, sums[:, 1], sums[:, 2], sums[:, 3]
        normal = torch.linalg.cross(a, b)
        size = normal.norm(dim=-1, keepdim=True)
        side = (normal * d).sum(-1, keepdim=True)
        unit = side / (side.abs() + SIDE_WIDTH * size + 1e-12) * normal / (size + 1e-12)
        aggregated = torch.zeros_like(h).index_add_(0, receiver, m) / degree
        features = torch.cat([h, aggregated], dim=-1)
        shift = shift + unit * self.normal(features)
        x = x + shift * movable[:, None]
        return h + self.update(features), x


class FlowNetwork(nn.Module):
    """The velocity of every atom given the atoms, the beads and the time t in [0, 1].

    Nodes are the ``n_atoms`` atoms then the ``n_beads`` beads, each with its own learned
    embedding. Every node receives messages from its ``neighbours`` nearest nodes, every
    atom from every bead and from its partners one and two bonds away; edge features are
    Gaussians of the distance, the kind of pair (one bond apart, two, an atom and its own
    bead, other), and, for pairs one or two bonds apart, the distance's deviation from its
    training mean in units of :data:`FINE` (tanh-squashed): the Gaussians lie 0.05 nm apart,
    too coarse to tell a good bond from one 10 % off.
    """

    def __init__(
        self,
        n_atoms: int,
        n_beads: int,
        bonds: np.ndarray,
        angles: np.ndarray,
        owner: np.ndarray,
        *,
        width: int,
        layers: int,
        neighbours: int,
        gaussians: int = 24,
        cutoff: float = 1.2,
    ) -> None:
        super().__init__()
        self.n_atoms, self.n_beads, self.neighbours = n_atoms, n_beads, neighbours
        n = n_atoms + n_beads
        self.embedding = nn.Embedding(n, width)
        self.time = _mlp(16, width, width)
        # 0 other, 1 one bond apart, 2 two bonds apart, 3 an atom and its own bead
        kind = torch.zeros(n, n, dtype=torch.int64)
        pairs = torch.as_tensor(np.asarray(angles, dtype=np.int64).reshape(-1, 3)[:, [0, 2]])
        kind[pairs[:, 0], pairs[:, 1]] = kind[pairs[:, 1], pairs[:, 0]] = 2
        bonds_t = torch.as_tensor(np.asarray(bonds, dtype=np.int64).reshape(-1, 2))
        kind[bonds_t[:, 0], bonds_t[:, 1]] = kind[bonds_t[:, 1], bonds_t[:, 0]] = 1
        atoms = torch.arange(n_atoms)
        beads = torch.as_tensor(np.asarray(owner, dtype=np.int64)) + n_atoms
        kind[atoms, beads] = kind[beads, atoms] = 3
        self.register_buffer("kind", kind, persistent=False)
        # Mean distance (nm) of each pair one or two bonds apart, set by the fit.
        self.register_buffer("reference", torch.zeros(n, n))
        always = kind > 0
        always[:n_atoms, n_atoms:] = True  # every atom hears every bead
        self.register_buffer("always", always, persistent=False)
        self.register_buffer("centres", torch.linspace(0.0, cutoff, gaussians), persistent=False)
        self.gamma = 0.5 / (cutoff / (gaussians - 1)) ** 2
        self.layers = nn.ModuleList(EGNNLayer(width, gaussians + 5) for _ in range(layers))
        movable = torch.zeros(n)
        movable[:n_atoms] = 1.0
        self.register_buffer("movable", movable, persistent=False)
        self.degree = float(min(neighbours, n - 1) + n_beads)

    def set_reference(self, frames: np.ndarray) -> None:
        """Mean distances of the pairs one or two bonds apart over atom frames [F, A, 3]."""
        i, j = torch.nonzero((self.kind == 1) | (self.kind == 2), as_tuple=True)
        frames = torch.as_tensor(np.asarray(frames), dtype=torch.float64)
        mean = (frames[:, i] - frames[:, j]).norm(dim=-1).mean(0)
        reference = torch.zeros_like(self.reference)
        reference[i, j] = mean.to(reference.dtype)
        self.reference.copy_(reference)

    def forward(self, atoms: torch.Tensor, beads: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Velocities [B, n_atoms, 3] (nm per unit t) of atoms [B, n_atoms, 3] (nm) at
        times t [B] given beads [B, n_beads, 3] (nm)."""
        batch = atoms.shape[0]
        n = self.n_atoms + self.n_beads
        x = torch.cat([atoms, beads], dim=1)
        with torch.no_grad():
            distance = torch.cdist(x, x)
            k = min(self.neighbours + 1, n)
            nearest = distance.topk(k, dim=-1, largest=False).indices
            adjacency = torch.zeros(batch, n, n, dtype=torch.bool, device=x.device)
            adjacency.scatter_(2, nearest, True)
            adjacency |= self.always
            adjacency &= ~torch.eye(n, dtype=torch.bool, device=x.device)
            frame, receiver, sender = adjacency.nonzero(as_tuple=True)
        edges = torch.stack([frame * n + sender, frame * n + receiver])
        flat = x.reshape(-1, 3)
        length = (flat[edges[1]] - flat[edges[0]]).norm(dim=-1, keepdim=True)
        kind = self.kind[receiver, sender]
        reference = self.reference[receiver, sender][:, None].to(x.dtype)
        fine = torch.tanh((length - reference) / FINE) * (reference > 0)
        edge_attr = torch.cat(
            [
                torch.exp(-self.gamma * (length - self.centres) ** 2),
                nn.functional.one_hot(kind, 4).to(x.dtype),
                fine,
            ],
            dim=-1,
        )
        frequencies = torch.arange(1, 9, device=x.device, dtype=x.dtype) * math.pi
        angle = t[:, None] * frequencies
        time = self.time(torch.cat([angle.sin(), angle.cos()], dim=-1))
        h = (self.embedding.weight[None] + time[:, None]).reshape(batch * n, -1)
        movable = self.movable.repeat(batch)
        out = flat
        for layer in self.layers:
            h, out = layer(h, out, edges, edge_attr, movable, self.degree)
        return (out - flat).reshape(batch, n, 3)[:, : self.n_atoms]


def _side(topology: md.Topology, centre: int, cb: int, fixed: set[int]) -> list[int]:
    """The atoms on the moving side of stereocentre ``centre``: the branch of its
    substituent ``cb`` (a CA's CB), which stops at ``fixed`` (the two substituents whose
    plane the side is reflected through, a CA's N and C: proline's ring closes on N, so
    the ring's bond to it keeps its length), and the centre's hydrogens."""
    graph: dict[int, set[int]] = {a.index: set() for a in topology.atoms}
    for a, b in topology.bonds:
        graph[a.index].add(b.index)
        graph[b.index].add(a.index)
    side, stack = {cb}, [cb]
    while stack:
        for other in graph[stack.pop()] - {centre} - side - fixed:
            side.add(other)
            stack.append(other)
    hydrogens = [other for other in graph[centre] if topology.atom(other).element.symbol == "H"]
    return sorted(side | set(hydrogens))


@BACKMAPPERS.register("flow")
class FlowBackmapper(Backmapper):
    """Conditional flow matching with an EGNN (see the module docstring).

    Parameters
    ----------
    samples
        All-atom structures drawn per CG frame.
    steps
        Euler steps from t = 0 to 1.
    noise
        Width (nm) of the Gaussian each atom starts in, around its bead.
    width, layers, neighbours
        EGNN features, layers, and nearest nodes each node hears.
    epochs, batch_size, learning_rate, max_frames, patience
        Training: at most ``max_frames`` training frames spread evenly, Adam with a cosine
        schedule, the epoch of the lowest validation loss kept, stop after ``patience``
        epochs without a lower one. Validation frames (a tenth of ``max_frames``) come
        from the last training trajectory, held back whole from the fit, where there are
        two or more (out of sample, as the trainers' validation trajectories are); from
        one trajectory, every tenth frame.
    geometry_weight
        Weight of the bond, angle and clash losses.
    fix_chirality
        Mend stereocentres of the wrong hand (module docstring).
    constrain
        Sweeps of the distance constraints applied to every drawn structure (0: none;
        :func:`constrain_distances`).
    spread
        Width of the starts at drawing as a fraction of ``noise``; None: calibrated after
        the fit (:meth:`calibrate`).
    diversity
        The mean diversity the calibration asks of each training trajectory (module
        docstring).
    """

    def __init__(
        self,
        *,
        samples: int = 4,
        steps: int = 25,
        noise: float = 0.05,
        width: int = 32,
        layers: int = 4,
        neighbours: int = 12,
        epochs: int = 40,
        batch_size: int = 64,
        learning_rate: float = 3e-3,
        max_frames: int = 4000,
        patience: int = 10,
        geometry_weight: float = 1.0,
        fix_chirality: bool = True,
        constrain: int = 300,
        spread: float | None = None,
        diversity: float = 0.1,
    ) -> None:
        for name, value in [("samples", samples), ("steps", steps), ("epochs", epochs)]:
            if value < 1:
                raise InputError(f"backmap.flow.{name}={value} must be at least 1")
        if noise <= 0:
            raise InputError(f"backmap.flow.noise={noise} must be positive (nm)")
        if constrain < 0:
            raise InputError(f"backmap.flow.constrain={constrain} must be at least 0")
        if spread is not None and not 0 < spread <= 1:
            raise InputError(f"backmap.flow.spread={spread} must lie in (0, 1] (or be null)")
        if not 0 <= diversity < 1:
            raise InputError(f"backmap.flow.diversity={diversity} must lie in [0, 1)")
        self.hparams: dict[str, Any] = {
            "samples": samples,
            "steps": steps,
            "noise": noise,
            "width": width,
            "layers": layers,
            "neighbours": neighbours,
            "epochs": epochs,
            "batch_size": batch_size,
            "learning_rate": learning_rate,
            "max_frames": max_frames,
            "patience": patience,
            "geometry_weight": geometry_weight,
            "fix_chirality": fix_chirality,
            "constrain": constrain,
            "spread": spread,
            "diversity": diversity,
        }
        self.samples, self.steps, self.noise = samples, steps, noise
        self.spread = 1.0 if spread is None else float(spread)
        self.network: FlowNetwork | None = None
        self.device = torch.device("cpu")
        self.records: list[dict[str, Any]] = []

    # --- what is fitted -------------------------------------------------------------------
    def _build(self, topology: md.Topology, xi: np.ndarray, owner: np.ndarray) -> None:
        self.geometry = Geometry.from_topology(topology)
        self.xi = np.asarray(xi, dtype=np.float64)
        self.owner = np.asarray(owner, dtype=np.int64)
        self.network = FlowNetwork(
            topology.n_atoms,
            len(xi),
            self.geometry.bonds,
            self.geometry.angles,
            self.owner,
            width=self.hparams["width"],
            layers=self.hparams["layers"],
            neighbours=self.hparams["neighbours"],
        )
        # A stereocentre is free where the flow places its CB side (no atom of it
        # defines a bead): its hand is the flow's to get right, not the CG frame's.
        mapped = set(np.flatnonzero(np.abs(self.xi).sum(axis=0) > 0).tolist())
        sides = [
            _side(topology, int(centre), int(c), {int(a), int(b)})
            for centre, a, b, c in self.geometry.chiral
        ]
        self._free = np.array([bool(side) and not set(side) & mapped for side in sides], bool)
        self._free_centres = torch.as_tensor(
            np.asarray(self.geometry.chiral, dtype=np.int64).reshape(-1, 4)[self._free]
        )
        self._free_signs = torch.as_tensor(self.geometry.chiral_sign[self._free])
        self._free_sides = [
            torch.as_tensor(side) for side, free in zip(sides, self._free, strict=True) if free
        ]
        self.hand = np.zeros(len(self.geometry.chiral))
        # An atom that is a bead by itself is where the CG frame puts it: the distance
        # constraints move the atoms around it.
        alone = (np.abs(self.xi) > 0).sum(axis=1) == 1
        pinned = (np.abs(self.xi[alone]) > 0).any(axis=0)
        self._mobility = (~pinned).astype(np.float64)

    def state(self) -> dict[str, torch.Tensor]:
        if self.network is None:
            raise RuntimeError("fit the backmapper before saving it")
        return {
            "coordinate_map": torch.as_tensor(self.xi),
            "owner": torch.as_tensor(self.owner),
            "hand": torch.as_tensor(self.hand),
            "spread": torch.tensor(self.spread, dtype=torch.float64),
            **{f"network.{k}": v.detach().cpu() for k, v in self.network.state_dict().items()},
        }

    def restore(self, state: dict[str, torch.Tensor], topology: md.Topology) -> None:
        self._build(topology, state["coordinate_map"].numpy(), state["owner"].numpy())
        self.hand = state["hand"].numpy()
        self.spread = float(state["spread"])
        assert self.network is not None
        self.network.load_state_dict(
            {k.removeprefix("network."): v for k, v in state.items() if k.startswith("network.")}
        )
        self.network.eval()

    # --- fitting --------------------------------------------------------------------------
    def fit(
        self,
        training: TrajectoryData,
        mapping: Any,
        *,
        seed: int = 0,
        device: str = "cpu",
        checkpoint: EpochCheckpoint | None = None,
    ) -> None:
        xi = coordinate_map_for(training, mapping, min_frames=2)
        picked, validation = _split(training.trajectory_index, self.hparams["max_frames"])
        frames = training.coordinates[picked].astype(np.float64)
        beads = np.einsum("ba,fad->fbd", xi, frames)
        owner = bead_owners(frames, xi)
        torch.manual_seed(seed)  # the network's initial parameters
        self._build(training.topology, xi, owner)
        self.hand = Standard.from_frames(training.topology, frames).hand
        assert self.network is not None
        self.network.set_reference(frames)
        self.device = torch.device(device)
        network = self.network
        network.to(self.device)
        generator = torch.Generator().manual_seed(seed)
        x_fit = torch.as_tensor(frames[~validation], dtype=torch.float32)
        x_valid = torch.as_tensor(frames[validation], dtype=torch.float32)
        z_fit = torch.as_tensor(beads[~validation], dtype=torch.float32)
        z_valid = torch.as_tensor(beads[validation], dtype=torch.float32)
        epochs, batch_size = self.hparams["epochs"], self.hparams["batch_size"]
        optimizer = torch.optim.Adam(network.parameters(), lr=self.hparams["learning_rate"])
        steps_per_epoch = math.ceil(len(x_fit) / batch_size)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=epochs * steps_per_epoch, eta_min=0.01 * self.hparams["learning_rate"]
        )
        valid_generator = torch.Generator()

        def epoch_step(epoch: int) -> EpochScores:
            order = torch.randperm(len(x_fit), generator=generator)
            sums = np.zeros(4)
            for start in range(0, len(x_fit), batch_size):
                batch = order[start : start + batch_size]
                parts = self._losses(x_fit[batch], z_fit[batch], generator)
                loss = parts[0] + self.hparams["geometry_weight"] * sum(parts[1:])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(network.parameters(), 10.0)
                optimizer.step()
                schedule.step()
                sums += len(batch) * np.array([p.item() for p in parts])
            train = sums / len(x_fit)
            network.eval()
            valid_generator.manual_seed(seed + 1)  # the same draws every epoch
            with torch.no_grad():
                parts = self._losses(x_valid, z_valid, valid_generator)
            valid = np.array([p.item() for p in parts])
            weight = self.hparams["geometry_weight"]
            record = {
                keys.EPOCH: epoch,
                "flow": train[0],
                "bonds": train[1],
                "angles": train[2],
                "clashes": train[3],
                keys.LOSS: train[0] + weight * train[1:].sum(),
                "validation_flow": valid[0],
                "validation_loss": valid[0] + weight * valid[1:].sum(),
            }
            return EpochScores([record], record[keys.LOSS], record["validation_loss"])

        outcome = run_epochs(
            epochs,
            epoch_step,
            model=network,
            stateful={"optimizer": optimizer, "schedule": schedule},
            generator=generator,
            patience=self.hparams["patience"],
            desc="backmap flow",
            checkpoint=checkpoint,
        )
        self.records = outcome.records
        network.eval()
        if self.hparams["spread"] is None:
            labels = training.trajectory_index[picked]
            pick = np.concatenate(
                [evenly(np.flatnonzero(labels == t), CALIBRATION_FRAMES) for t in np.unique(labels)]
            )
            self.spread = self.calibrate(frames[pick], beads[pick], labels[pick])
            log.info("backmap flow: starts calibrated to %.3g of noise", self.spread)

    def calibrate(
        self, truth: np.ndarray, beads: np.ndarray, groups: np.ndarray | None = None
    ) -> float:
        """The widest start, as a fraction (:data:`NARROWEST` ... 1) of ``noise``, whose
        draws for the CG frames ``beads`` [F, K, 3] of frames ``truth`` [F, A, 3] (nm)
        lie at most ``1 - diversity`` as far apart as from the truth: mean diversity at
        least the ``diversity`` asked for in every group of frames (``groups`` [F], the
        trajectory of each; one group without), found by bisection in log width. Every
        width draws from the same standard normal numbers (:meth:`draw`), so the
        diversity changes smoothly with it. One sample per frame has no spread to
        calibrate: 1.

        :meth:`fit` passes frames of every training trajectory, those fitted on and the
        validation one, and asks the target of each. One trajectory held back does not
        predict another: on chignolin's 100-ps trajectories, fold 1's validation
        trajectory reached +0.13 at full width where its held-out one had -0.05 and the
        two it was fitted on -0.11. Frames the flow was fitted on are those it rebuilds
        best, so the spread they allow at a given diversity is the least; a held-out
        trajectory's diversity lies above them unless it is easier than the fitted frames.
        """
        if self.samples < 2 or not len(truth):
            return 1.0
        heavy = self.geometry.heavy
        target = float(self.hparams["diversity"])
        groups = np.zeros(len(truth), dtype=np.int64) if groups is None else np.asarray(groups)
        members = [groups == g for g in np.unique(groups)]

        def calibrated(spread: float) -> bool:
            drawn = self.draw(beads, spread).reshape(len(truth), self.samples, *truth.shape[1:])
            to_truth, among = sample_rmsds(drawn.transpose(1, 0, 2, 3), truth, heavy)
            scores = diversity(to_truth, among)
            return min(float(np.mean(scores[m])) for m in members) >= target

        if calibrated(1.0):
            return 1.0
        low, high = math.log(NARROWEST), 0.0
        for _ in range(CALIBRATION_STEPS):
            middle = 0.5 * (low + high)
            if calibrated(math.exp(middle)):
                low = middle
            else:
                high = middle
        return math.exp(low)

    def _losses(
        self, x1: torch.Tensor, z: torch.Tensor, generator: torch.Generator
    ) -> list[torch.Tensor]:
        """Flow-matching, bond, angle and clash losses of a batch of frames x1 [B, A, 3]
        with beads z [B, K, 3]."""
        assert self.network is not None
        x1, z = x1.to(self.device), z.to(self.device)
        owner = torch.as_tensor(self.owner, device=self.device)
        epsilon = torch.randn(x1.shape, generator=generator).to(self.device)
        t = torch.rand(len(x1), generator=generator).to(self.device)
        x0 = z[:, owner] + self.noise * epsilon
        if len(self._free_centres):
            # Each free stereocentre's target takes the hand its start has: a flow that
            # mirrors with its input can learn that, and the sampler mends the hand.
            x1 = self._turn(x1, self._hands(x0))
        xt = (1 - t[:, None, None]) * x0 + t[:, None, None] * x1
        velocity = self.network(xt, z, t)
        flow = ((velocity - (x1 - x0)) ** 2).sum(-1).mean()
        clean = xt + (1 - t[:, None, None]) * velocity
        weight = t**2
        g = self.geometry
        bonds = torch.as_tensor(g.bonds, device=self.device)
        if len(bonds):
            predicted = (clean[:, bonds[:, 0]] - clean[:, bonds[:, 1]]).norm(dim=-1)
            true = (x1[:, bonds[:, 0]] - x1[:, bonds[:, 1]]).norm(dim=-1)
            bond = (weight[:, None] * (predicted - true) ** 2).mean() * 100.0
        else:
            bond = clean.new_zeros(())
        angles = torch.as_tensor(g.angles, device=self.device)
        if len(angles):
            angle = (weight[:, None] * (_cosines(clean, angles) - _cosines(x1, angles)) ** 2).mean()
        else:
            angle = clean.new_zeros(())
        pairs = torch.as_tensor(g.clash_pairs, device=self.device)
        if len(pairs):
            distance = (clean[:, pairs[:, 0]] - clean[:, pairs[:, 1]]).norm(dim=-1)
            clash = (weight[:, None] * torch.relu(CLASH - distance) ** 2).mean() * 100.0
        else:
            clash = clean.new_zeros(())
        return [flow, bond, angle, clash]

    # --- drawing --------------------------------------------------------------------------
    @torch.no_grad()
    def integrate(self, beads: torch.Tensor, start: torch.Tensor, *, fix: bool) -> torch.Tensor:
        """Atoms [B, A, 3] (nm) at t = 1 from atoms ``start`` at t = 0, beads [B, K, 3]
        held fixed: ``steps`` Euler steps, the least (minimum-norm) correction that makes
        the structure map onto the beads exactly, stereocentres mended if ``fix``, and
        the distance constraints (:meth:`constrain`), after which centres are mended again.

        Mending follows the fit: the correction moves a centre's mapped atoms (a C-alpha
        map's CA), which can turn a centre that the flow left nearly flat, while a free
        centre's CB side holds no mapped atom, so reflecting it keeps the fit exact."""
        assert self.network is not None
        x = start
        dt = 1.0 / self.steps
        for step in range(self.steps):
            t = torch.full((len(x),), step * dt, dtype=x.dtype, device=x.device)
            x = x + dt * self.network(x, beads, t)
        x = onto_beads(x, beads, self.xi)
        if fix:
            x = self.mend(x)
        sweeps = self.hparams["constrain"]
        if sweeps:
            # From the mended hand, the constraints move a centre's other atoms (its H)
            # to the side its distances put them; a centre they turned is mended again.
            x = self.constrain(x, beads, sweeps)
            if fix:
                x = self.mend(x)
        return x

    def constrain(self, x: torch.Tensor, beads: torch.Tensor, sweeps: int) -> torch.Tensor:
        """Atoms [B, A, 3] with every pair one or two bonds apart moved to its mean distance
        in the training frames (bond lengths and, through the 1-3 distances, bond angles)
        and every heavy-atom pair farther apart in bonds pushed out to :data:`CLASH`, by
        ``sweeps`` sweeps of :func:`separate` and :func:`constrain_distances`, each followed
        by the exact fit onto the beads [B, K, 3]. The targets need not agree with each
        other (a CG frame's fixed atoms need not lie as the mean lengths and angles between
        them would put them): the sweeps then settle where the bonds, met last in each,
        hold, and the angles take the difference, as a force field's stiffer bonds would
        have it."""
        assert self.network is not None
        kind = self.network.kind[: self.network.n_atoms, : self.network.n_atoms]
        # The 1-3 pairs first, the bonds last.
        i2, j2 = torch.nonzero(torch.triu(kind == 2), as_tuple=True)
        i1, j1 = torch.nonzero(torch.triu(kind == 1), as_tuple=True)
        groups = colour_pairs(i2.tolist(), j2.tolist())
        groups += [group + len(i2) for group in colour_pairs(i1.tolist(), j1.tolist())]
        i, j = torch.cat([i2, i1]), torch.cat([j2, j1])
        target = self.network.reference[i, j].to(x.dtype).to(x.device)
        i, j = i.to(x.device), j.to(x.device)
        groups = [group.to(x.device) for group in groups]
        mobility = torch.as_tensor(self._mobility, dtype=x.dtype, device=x.device)
        heavy = torch.as_tensor(self.geometry.clash_pairs, device=x.device).reshape(-1, 2)
        heavy = heavy[mobility[heavy].sum(-1) > 0]  # two fixed atoms are the CG frame's
        for sweep in range(sweeps):
            if sweep % CHECK_EVERY == 0:
                # Only pairs near contact can come closer than CLASH before the next check.
                contact = _distances(x, heavy[:, 0], heavy[:, 1])
                near = heavy[(contact < CLASH + NEAR).any(0)]
            x = separate(x, near[:, 0], near[:, 1], CLASH, mobility)
            x = constrain_distances(x, i, j, target, mobility, groups)
            x = onto_beads(x, beads, self.xi)
        return x

    def _hands(self, x: torch.Tensor, k: int | None = None) -> torch.Tensor:
        """[B, n_free] the hand of each free stereocentre of atoms [B, A, 3] (or [B], of
        free centre ``k`` alone), +1 for the L amino acid's
        (:func:`~cgpipe.backmap.quality.chirality`)."""
        centres, signs = self._free_centres, self._free_signs
        if k is not None:
            centres, signs = centres[k], signs[k]
        centre, a, b, c = (centres[..., i] for i in range(4))
        normal = torch.linalg.cross(x[:, a] - x[:, centre], x[:, b] - x[:, centre])
        volume = (normal * (x[:, c] - x[:, centre])).sum(-1)
        return torch.sign(volume) * signs.to(x.dtype).to(x.device)

    def _turn(self, x: torch.Tensor, want: torch.Tensor) -> torch.Tensor:
        """Atoms [B, A, 3] with each free stereocentre k whose hand is not ``want`` [B,
        n_free] (+1 or -1; 0: either) turned: its moving side (a CA's CB side) reflected
        through the plane of the centre and its other two substituents (a CA's N-CA-C
        plane). The centres are taken in order, each hand read after the turns before it:
        turning a CA's side turns the THR or ILE CB within it, which comes after it."""
        x = x.clone()
        for k, (centre, a, b, _) in enumerate(self._free_centres.tolist()):
            rows = self._hands(x, k) * want[:, k] < 0
            if not bool(rows.any()):
                continue
            block = x[rows]
            normal = torch.linalg.cross(
                block[:, a] - block[:, centre], block[:, b] - block[:, centre]
            )
            unit = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-9)
            side = self._free_sides[k]
            height = ((block[:, side] - block[:, None, centre]) * unit[:, None]).sum(
                -1, keepdim=True
            )
            block[:, side] = block[:, side] - 2 * height * unit[:, None]
            x[rows] = block
        return x

    def mend(self, x: torch.Tensor) -> torch.Tensor:
        """Atoms [B, A, 3] with every free stereocentre of the training frames' opposite
        hand turned (:meth:`_turn`)."""
        if not len(self._free_centres):
            return x
        hand = torch.as_tensor(self.hand[self._free], dtype=x.dtype, device=x.device)
        return self._turn(x, hand.expand(len(x), -1))

    def backmap(self, cg: TrajectoryData, *, batch: int = 256) -> tuple[np.ndarray, pd.DataFrame]:
        """``samples`` structures per CG frame: positions [F * samples, n_atoms, 3] (nm),
        a frame's samples together, and the table (replica, sample, cg_rmsd). The starts
        draw from a fixed seed: the same CG frames give the same structures."""
        positions = self.draw(cg.coordinates, self.spread, batch=batch)
        table = samples_table(cg, positions, self.xi, self.samples)
        return positions, table

    def draw(self, beads: np.ndarray, spread: float, *, batch: int = 256) -> np.ndarray:
        """``samples`` structures [F * samples, n_atoms, 3] (nm) for each CG frame of
        ``beads`` [F, K, 3], a frame's samples together, from starts of width ``spread`` x
        ``noise``; the standard normal numbers come from a fixed seed."""
        if self.network is None:
            raise RuntimeError("fit the backmapper before backmapping")
        owner = torch.as_tensor(self.owner)
        generator = torch.Generator().manual_seed(0)
        z_all = torch.as_tensor(beads, dtype=torch.float32).repeat_interleave(self.samples, dim=0)
        out = []
        fix = bool(self.hparams["fix_chirality"])
        for start in range(0, len(z_all), batch):
            z = z_all[start : start + batch]
            x0 = z[:, owner] + spread * self.noise * torch.randn(
                (len(z), len(self.owner), 3), generator=generator
            )
            out.append(self.integrate(z.to(self.device), x0.to(self.device), fix=fix).cpu())
        n_atoms = len(self.owner)
        positions = torch.cat(out).numpy() if out else np.empty((0, n_atoms, 3), dtype=np.float32)
        return positions.astype(np.float32)


def constrain_distances(
    x: torch.Tensor,
    i: torch.Tensor,
    j: torch.Tensor,
    target: torch.Tensor,
    mobility: torch.Tensor,
    groups: list[torch.Tensor],
) -> torch.Tensor:
    """One sweep of distance constraints over structures x [B, A, 3] (nm): every pair
    (``i``, ``j``) [n] moved along its axis to distance ``target`` [n] (nm), the move
    shared by its atoms in proportion to their ``mobility`` [A] (0: fixed).

    As SHAKE (Ryckaert et al. 1977) does, pairs are met one after another, each from where
    the last left its atoms (Gauss-Seidel); pairs that share no atom do not interact, so
    each of ``groups`` (:func:`colour_pairs`) is met at once, on the whole batch, in
    their order. Repeated sweeps converge."""
    for group in groups:
        a, b = i[group], j[group]
        r = x[:, a] - x[:, b]
        distance = r.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        share = mobility[a] + mobility[b]
        scale = torch.where(share > 0, 1.0 / share.clamp_min(1e-12), 0.0)
        step = (target[group, None] - distance) / distance * r * scale[:, None]
        x = x.index_add(1, a, step * mobility[a, None]).index_add(1, b, -step * mobility[b, None])
    return x


def separate(
    x: torch.Tensor, i: torch.Tensor, j: torch.Tensor, contact: float, mobility: torch.Tensor
) -> torch.Tensor:
    """Structures x [B, A, 3] (nm) with every pair (``i``, ``j``) [n] closer than
    ``contact`` (nm) moved apart along its axis to ``contact``, shared in proportion to
    the atoms' ``mobility`` [A]; pairs farther apart are left alone (an inequality). The
    pairs are met at once (Jacobi: an atom in several short pairs moves by the mean of
    their moves), since few are short and they seldom share an atom."""
    if not len(i):
        return x
    r = x[:, i] - x[:, j]
    distance = r.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    short = (distance < contact).to(x.dtype)
    share = mobility[i] + mobility[j]
    scale = torch.where(share > 0, 1.0 / share.clamp_min(1e-12), 0.0)
    step = short * (contact - distance) / distance * r * scale[:, None]
    move = torch.zeros_like(x).index_add(1, i, step * mobility[i, None])
    move = move.index_add(1, j, -step * mobility[j, None])
    count = torch.zeros_like(x[..., :1]).index_add(1, i, short).index_add(1, j, short)
    return x + move / count.clamp_min(1.0)


def _distances(x: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
    return (x[:, i] - x[:, j]).norm(dim=-1)


def colour_pairs(i: list[int], j: list[int]) -> list[torch.Tensor]:
    """Pairs (i[k], j[k]) split into groups in which no atom appears twice (greedy: each
    pair takes the first group neither of its atoms is in yet)."""
    groups: list[list[int]] = []
    members: list[set[int]] = []
    for k, (a, b) in enumerate(zip(i, j, strict=True)):
        for group, atoms in zip(groups, members, strict=True):
            if a not in atoms and b not in atoms:
                group.append(k)
                atoms.update((a, b))
                break
        else:
            groups.append([k])
            members.append({a, b})
    return [torch.tensor(group) for group in groups]


def _split(labels: np.ndarray, max_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The training frames a fit reads (indices, spread evenly) and which of them
    validate: at most ``max_frames`` - ``max_frames`` // 10 frames to fit, of every
    trajectory but the last, and ``max_frames`` // 10 of the last, held back whole; of a
    single trajectory, every tenth of ``max_frames`` frames."""
    trajectories = np.unique(labels)
    if len(trajectories) < 2:
        picked = evenly(np.arange(len(labels)), max_frames)
        return picked, np.arange(len(picked)) % 10 == 9
    held = labels == trajectories[-1]
    fit = evenly(np.flatnonzero(~held), max_frames - max_frames // 10)
    valid = evenly(np.flatnonzero(held), max(max_frames // 10, 1))
    return np.concatenate([fit, valid]), np.arange(len(fit) + len(valid)) >= len(fit)


def _cosines(x: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    a = x[:, angles[:, 0]] - x[:, angles[:, 1]]
    b = x[:, angles[:, 2]] - x[:, angles[:, 1]]
    return (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-9)
