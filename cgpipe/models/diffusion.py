"""A denoising-diffusion model that is two things at once ("two for one", Arts et al.,
JCTC 2023): an i.i.d. sampler of the CG equilibrium distribution (reverse diffusion) and,
through its score at a small noise level, a CG force field that Langevin dynamics can
integrate (force = kT x score). It learns from positions alone: no forces are needed.

Noise process (variance preserving, discrete, ``steps`` = T steps, the cosine schedule of
Nichol & Dhariwal 2021): frames are centred and divided by ``scale`` (nm, the RMS of the
training frames' centred coordinates, set by the trainer), y_0 = (x - centre) / scale, and

    y_t = sqrt(abar_t) y_0 + sigma_t eps,    sigma_t = sqrt(1 - abar_t),   t = 1 … T,

with eps standard normal in the subspace of zero centre (the energy is translation
invariant, so the centre carries nothing). The network is an energy: a SchNet over the
bead positions y * scale (nm) whose bead embeddings are shifted by an embedding of t,
E_net(y, t), invariant under rotation, translation and permutation of like beads. The
noise it predicts is its gradient, eps_hat = grad_y E_net(y, t), so the score of y_t's
density is -eps_hat / sigma_t and the model is conservative at every noise level.

Bonded terms: a SchNet's radial basis (Gaussians 0.05 nm apart at the default size)
cannot resolve a bond whose length spreads by 0.0025 nm, and the default ala2 model's
reverse diffusion placed the terminal beads at 0.23 +- 0.11 nm instead of 0.133 +- 0.002
(decided by step 300 of 1000 and never corrected). The energy therefore adds, for every
bond and angle of the map, a shared network of that coordinate standardised to the noise
level, with a learned embedding of the term and the noise embedding: a bond's length r
in scaled units enters as z = (r - sqrt(abar) r_0) / sqrt(abar s^2 + 2 sigma^2) (r_0, s its
mean and spread in the training frames; the noise adds 2 sigma^2 to the variance of
each component of the bond vector), an angle as z = (theta - theta_0) / sqrt(s^2 +
2 sigma^2 / abar (1 / r_1^2 + 1 / r_2^2)) (shrinking by sqrt(abar) keeps angles; the
noise turns each arm of length r_i by about sqrt(2) sigma / (sqrt(abar) r_i)). So z is of
order one at every noise level, and the exact score of a harmonic bond is a function of it
that a small network represents. Lengths and angles are invariant under every isometry.
Consecutive dihedrals (a residue's phi and psi, which share three beads) get a joint term
of both, as CHARMM's CMAP corrects a sum of one-dihedral terms: alanine dipeptide's
phi/psi free energy is not separable.

Chirality: an energy of distances alone is also invariant under reflection, so its
reverse diffusion, started from isotropic noise, draws every configuration and its mirror
image equally (alanine dipeptide's i.i.d. samples were 48 % D-alanine). The energy
therefore adds a term of the signed dihedrals of the map's bonded quadruples (one per
central bond, and the improper of every bead with three bonded neighbours, the handedness
of a CA with N, C and CB): a shared network of (sin, cos) of each, a learned embedding of
the quadruple and the noise embedding, summed. It changes sign under reflection, so the
model is invariant under rotations and translations only, as a chiral molecule's free
energy is. That is not enough for the sampler: trained on one enantiomer alone, the energy
only learns what the data shows, and reverse diffusion from isotropic noise still chose
the mirror image in 20 % of ala2 draws (with the bonded terms). Where the training frames
fix the sign of a signed dihedral (at least 99 % of them agree: the improper of a chiral
centre), the sampler therefore inverts every intermediate and final frame whose signs vote
for the mirror image (y -> -y), as FlowBack reflects D-residues during and after its
integration; the force field needs nothing of the sort, a simulation keeps its hand.

As a force field the model is the energy of the data at the step ``force_noise``
(t_f; the anchors take 8 of 1000 for alanine dipeptide):

    U(x) = kT E_net(sqrt(abar_f) y, t_f) / sigma_f,    y = x / scale,

in kJ/mol, because p_0(y) is proportional to p_t(sqrt(abar_t) y) to the extent that the
noise at t_f is negligible; its forces are -dU/dx by autograd, as for every model.

Fokker-Planck regulariser (optional, ``fokker_planck_weight``; Plainer et al. 2025): the
force field is the score at one small step, the sampler integrates the scores of all steps,
and nothing in denoising score matching makes them the scores of one family of densities.
The forward process is the SDE dy = -beta(tau) y / 2 dtau + sqrt(beta(tau)) dW in tau = t / T
(the cosine schedule in continuous time: abar(tau) = f(tau) / f(0), beta = -d ln abar /
dtau), whose densities p_tau obey the Fokker-Planck equation; for log p it reads

    d_tau log p = beta / 2 (d + y . grad log p + lap log p + |grad log p|^2),

d the dimension. The model's log density is log q = -E_net(y, tau T) / sigma(tau) up to a
constant in y (its gradient is the score); its residual r(y, tau), the left side minus the
right, is a function of tau alone where q is a family of Fokker-Planck densities (the
constant is d_tau of the normaliser). :meth:`fokker_planck_residual` computes r exactly
(the Laplacian over every coordinate, by autograd); the trainer penalises its spread over
frames noised to one tau.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

from cgpipe.models.base import MODELS, EnergyModel
from cgpipe.models.neighbours import pair_distances
from cgpipe.models.prior import Prior
from cgpipe.models.priors.geometry import bond_angles, dihedral_angles
from cgpipe.models.schnet import SchNet, ShiftedSoftplus
from cgpipe.units import thermal_energy

log = logging.getLogger(__name__)

TIME_FEATURES = 10
"""Sinusoidal features of tau = t / T that the noise embedding is computed from, at
frequencies pi 2^k, k < TIME_FEATURES: up to 1.6 rad per step at T = 1000, as smooth in
tau as the Fokker-Planck residual's time derivative needs (16 features gave 100 rad per
step, an embedding that told steps apart and had no useful derivative between them)."""
CLIP = 5.0
"""The reverse process clips its estimate of the clean frame to +-CLIP (units of the
training frames' RMS coordinate): no bead of a molecule lies 5 RMS from its centre."""
HANDED = 0.99
"""A signed dihedral fixes the hand where at least this share of training frames agree in
its sign."""
TERM_FEATURES = 8
"""Width of the learned embedding of each bonded term (bond, angle, signed dihedral)."""


def cosine_schedule(steps: int, offset: float = 0.008) -> torch.Tensor:
    """[steps + 1] abar_t for t = 0 … steps (abar_0 = 1) of the cosine schedule, each
    step's beta_t = 1 - abar_t / abar_{t-1} clipped to at most 0.999 (float64)."""
    t = torch.arange(steps + 1, dtype=torch.float64) / steps
    f = torch.cos((t + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
    return torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, dim=0)])


def continuous_schedule(
    tau: torch.Tensor, offset: float = 0.008
) -> tuple[torch.Tensor, torch.Tensor]:
    """abar(tau) and beta(tau) = -d ln abar / dtau of the cosine schedule in continuous
    time (tau = t / T; :func:`cosine_schedule` is it at the steps, but for its clip near
    tau = 1)."""
    angle = (tau + offset) / (1 + offset) * math.pi / 2
    start = math.cos(offset / (1 + offset) * math.pi / 2) ** 2
    return torch.cos(angle) ** 2 / start, math.pi / (1 + offset) * torch.tan(angle)


def centred_noise(shape: Sequence[int], generator: torch.Generator | None, like: torch.Tensor):
    """Standard normal noise [n_frames, n_beads, 3] with zero centre in every frame (each
    frame's noise in the subspace of zero centre is isotropic with unit variance)."""
    eps = torch.randn(tuple(shape), generator=generator, dtype=like.dtype)
    eps = eps.to(like.device)
    return eps - eps.mean(dim=1, keepdim=True)


class TermEnergy(nn.Module):
    """The energy of one kind of bonded term (bonds, angles or signed dihedrals): a network
    shared by the terms, of each term's features, a learned embedding of the term and the
    noise embedding, summed over the terms.

    Parameters
    ----------
    n_terms
        Terms of this kind.
    n_features
        Features per term.
    width
        Width of the noise embedding and of the hidden layer.
    """

    def __init__(self, n_terms: int, n_features: int, width: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(max(n_terms, 1), TERM_FEATURES)
        self.network = nn.Sequential(
            nn.Linear(n_features + TERM_FEATURES + width, width),
            ShiftedSoftplus(),
            nn.Linear(width, 1),
        )

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """[n_frames] energy of ``features`` [n_frames, n_terms, n_features] under the
        noise embedding ``condition`` [n_frames, width]."""
        n_frames, n_terms = features.shape[:2]
        inputs = torch.cat(
            [
                features,
                self.embedding.weight[:n_terms].expand(n_frames, -1, -1),
                condition.unsqueeze(1).expand(-1, n_terms, -1),
            ],
            dim=-1,
        )
        return self.network(inputs).sum(dim=(1, 2))


@MODELS.register("diffusion")
class DiffusionModel(EnergyModel):
    """Denoising-diffusion energy model (force field and i.i.d. sampler).

    Parameters
    ----------
    bead_types
        [n_beads] integer bead types.
    prior
        Unused: ``None`` (the model needs no prior; the simulation's health checks use the
        reference's bonded statistics).
    temperature
        K: the temperature of the training frames, whose kT turns the score into forces.
    hidden_channels, num_filters, num_interactions, num_gaussians, cutoff
        The SchNet body (cutoff in nm: noisy frames spread, so it should span the
        molecule).
    steps
        T, the number of diffusion steps.
    force_noise
        The step t_f whose score is the force field (1 … ``steps``).
    quadruples
        [n, 4] bead indices of the signed dihedrals the energy sees (the prior's bonded
        dihedrals and impropers, from :meth:`from_config`); none: reflection invariant.
    dihedral_pairs
        [n, 2] indices into ``quadruples`` of the consecutive dihedrals (phi and psi) whose
        joint distribution the energy sees through a term of both (as CHARMM's CMAP).
    bonds, angles
        [n, 2] and [n, 3] bead indices of the bonds and angles the energy sees by their
        standardised values (the prior's, from :meth:`from_config`; their means and
        spreads come from the training frames, :meth:`fit_statistics`).
    fokker_planck_weight
        Weight of the Fokker-Planck regulariser in the denoising loss (0: none); the
        trainer reads it.
    """

    samples: ClassVar[tuple[str, ...]] = ("dynamics", "iid")

    def __init__(
        self,
        bead_types: Sequence[int],
        prior: Mapping[str, Any] | None = None,
        *,
        temperature: float,
        hidden_channels: int,
        num_filters: int,
        num_interactions: int,
        num_gaussians: int,
        cutoff: float,
        steps: int,
        force_noise: int,
        quadruples: Sequence[Sequence[int]] = (),
        dihedral_pairs: Sequence[Sequence[int]] = (),
        bonds: Sequence[Sequence[int]] = (),
        angles: Sequence[Sequence[int]] = (),
        fokker_planck_weight: float = 0.0,
    ) -> None:
        super().__init__(bead_types, None)
        if not float(fokker_planck_weight) >= 0:
            raise ValueError(f"fokker_planck_weight must be >= 0, got {fokker_planck_weight}")
        if not 1 <= int(force_noise) <= int(steps):
            raise ValueError(f"force_noise must be a step in 1 … {steps}, got {force_noise}")
        options = {
            "hidden_channels": int(hidden_channels),
            "num_filters": int(num_filters),
            "num_interactions": int(num_interactions),
            "num_gaussians": int(num_gaussians),
            "cutoff": float(cutoff),
        }
        quadruples = [[int(b) for b in q] for q in quadruples]
        dihedral_pairs = [[int(q) for q in pair] for pair in dihedral_pairs]
        bonds = [[int(b) for b in pair] for pair in bonds]
        angles = [[int(b) for b in triple] for triple in angles]
        self.record_hparams(
            temperature=float(temperature),
            steps=int(steps),
            force_noise=int(force_noise),
            quadruples=quadruples,
            dihedral_pairs=dihedral_pairs,
            bonds=bonds,
            angles=angles,
            fokker_planck_weight=float(fokker_planck_weight),
            **options,
        )
        self.steps, self.force_noise = int(steps), int(force_noise)
        self.fokker_planck_weight = float(fokker_planck_weight)
        self.kT = thermal_energy(float(temperature))  # kJ/mol
        self.network = SchNet(num_types=max(self.hparams["bead_types"]) + 1, **options)
        width = options["hidden_channels"]
        self.noise_embedding = nn.Sequential(
            nn.Linear(2 * TIME_FEATURES, width), ShiftedSoftplus(), nn.Linear(width, width)
        )
        for name, terms, size in (
            ("quadruples", quadruples, 4),
            ("dihedral_pairs", dihedral_pairs, 2),
            ("bonds", bonds, 2),
            ("angles", angles, 3),
        ):
            self.register_buffer(name, torch.tensor(terms, dtype=torch.long).reshape(-1, size))
        self.dihedral_energy = TermEnergy(len(quadruples), 2, width)
        self.pair_energy = TermEnergy(len(dihedral_pairs), 4, width)
        self.bond_energy = TermEnergy(len(bonds), 1, width)
        self.angle_energy = TermEnergy(len(angles), 1, width)
        # From the training frames (:meth:`fit_statistics`): each bond's mean length and
        # spread (scaled units); each angle's mean and spread (rad) and its two arms' mean
        # lengths (scaled units).
        self.register_buffer("bond_statistics", torch.ones(len(bonds), 2))
        self.register_buffer("angle_statistics", torch.ones(len(angles), 4))
        # +1 or -1 where the training frames fix the sign of a signed dihedral, else 0.
        self.register_buffer("handedness", torch.zeros(len(quadruples)))
        self.register_buffer("abar", cosine_schedule(self.steps).float())
        # Made once, not in every force call of a simulation (not saved: derived).
        frequencies = torch.pi * 2.0 ** torch.arange(TIME_FEATURES, dtype=torch.float32)
        self.register_buffer("frequencies", frequencies, persistent=False)
        self.register_buffer("scale", torch.ones(()))  # nm; set from the training frames

    @classmethod
    def from_config(
        cls, section: Mapping[str, Any], *, bead_types: Sequence[int], prior: Prior
    ) -> EnergyModel:
        """The fold's prior is not used as an energy; its temperature is the training
        frames', and its bonds give the signed dihedrals the energy sees."""
        from cgpipe.bonded import (
            angle_triples,
            consecutive_dihedrals,
            dihedral_quadruples,
            improper_quadruples,
        )

        options = {key: value for key, value in section.items() if key != "trainer"}
        bonds = prior.bonds.cpu().numpy()
        dihedrals = dihedral_quadruples(bonds)
        quadruples = np.concatenate([dihedrals, improper_quadruples(bonds)])
        return cls(
            bead_types=bead_types,
            temperature=prior.temperature,
            quadruples=quadruples.tolist(),
            dihedral_pairs=consecutive_dihedrals(dihedrals).tolist(),
            bonds=bonds.tolist(),
            angles=angle_triples(bonds).tolist(),
            **options,
        )

    @torch.no_grad()
    def fit_statistics(self, positions: torch.Tensor) -> None:
        """Set ``scale`` (nm: the RMS of the centred coordinates) and the bonds' and
        angles' means and spreads from the training frames ``positions`` [n_frames,
        n_beads, 3] (nm)."""
        centred = positions - positions.mean(dim=1, keepdim=True)
        self.scale.fill_(float(centred.pow(2).mean().sqrt()))
        y = centred / self.scale
        for statistics, values in (
            (self.bond_statistics, pair_distances(y, self.bonds)),
            (self.angle_statistics, bond_angles(y, self.angles)),
        ):
            if values.shape[1]:
                statistics[:, 0] = values.mean(dim=0)
                # a floor, so that a term rigid in the data does not divide by zero
                statistics[:, 1] = values.std(dim=0).clamp(min=1e-3)
        if len(self.angles):
            self.angle_statistics[:, 2] = pair_distances(y, self.angles[:, :2]).mean(dim=0)
            self.angle_statistics[:, 3] = pair_distances(y, self.angles[:, 1:]).mean(dim=0)
        if len(self.quadruples):
            positive = (dihedral_angles(y, self.quadruples) > 0).float().mean(dim=0)
            self.handedness.copy_((positive >= HANDED).float() - (positive <= 1 - HANDED).float())

    def mirrored(self, y: torch.Tensor) -> torch.Tensor:
        """[n_frames] True where the frame's signed dihedrals vote (by ``handedness``)
        for the mirror image of the training frames' hand."""
        if not len(self.quadruples):
            return torch.zeros(len(y), dtype=torch.bool, device=y.device)
        signs = torch.sign(dihedral_angles(y, self.quadruples))
        return (signs * self.handedness.to(y.dtype)).sum(dim=1) < 0

    # --- the noise-conditioned network ----------------------------------------------------
    def sigma(self, t: torch.Tensor) -> torch.Tensor:
        """sigma_t = sqrt(1 - abar_t) of integer steps ``t``."""
        return (1 - self.abar[t]).clamp(min=0).sqrt()

    def noise_energy(self, y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """E_net(y, t) [n_frames] of scaled positions y [n_frames, n_beads, 3] at steps
        ``t`` [n_frames] (dimensionless; its y-gradient is the predicted noise)."""
        tau = t.to(y.dtype) / self.steps
        phase = tau.unsqueeze(1) * self.frequencies.to(y.dtype)
        condition = self.noise_embedding(torch.cat([phase.sin(), phase.cos()], dim=1))
        energy = self.network(self.bead_types, y * self.scale, condition)
        if len(self.quadruples):
            angles = dihedral_angles(y, self.quadruples)  # [n_frames, n_quadruples]
            features = torch.stack([angles.sin(), angles.cos()], dim=-1)
            energy = energy + self.dihedral_energy(features, condition)
            if len(self.dihedral_pairs):
                pairs = features[:, self.dihedral_pairs].flatten(start_dim=2)
                energy = energy + self.pair_energy(pairs, condition)
        if len(self.bonds) or len(self.angles):
            # The continuous schedule, differentiable in t (the Fokker-Planck residual's
            # d/dtau); at integer steps it is the discrete one.
            abar, _ = continuous_schedule(tau)
            abar = abar.clamp(min=1e-6, max=1).unsqueeze(1)
            variance = 1 - abar  # sigma^2
        if len(self.bonds):
            mean, spread = self.bond_statistics.T.to(y.dtype)
            z = (pair_distances(y, self.bonds) - abar.sqrt() * mean) / (
                abar * spread**2 + 2 * variance
            ).sqrt()
            energy = energy + self.bond_energy(z.unsqueeze(-1), condition)
        if len(self.angles):
            mean, spread, first, second = self.angle_statistics.T.to(y.dtype)
            turn = 2 * variance / abar * (1 / first**2 + 1 / second**2)
            z = (bond_angles(y, self.angles) - mean) / (spread**2 + turn).clamp(max=10).sqrt()
            energy = energy + self.angle_energy(z.unsqueeze(-1), condition)
        return energy

    def predicted_noise(
        self, y: torch.Tensor, t: torch.Tensor, create_graph: bool = False
    ) -> torch.Tensor:
        """eps_hat = grad_y E_net(y, t) [n_frames, n_beads, 3]."""
        with torch.enable_grad():
            if not y.requires_grad:
                y = y.detach().requires_grad_(True)
            energy = self.noise_energy(y, t)
            (gradient,) = torch.autograd.grad(energy.sum(), y, create_graph=create_graph)
        return gradient

    # --- the Fokker-Planck residual ---------------------------------------------------------
    def fokker_planck_residual(self, y: torch.Tensor, tau: float) -> torch.Tensor:
        """r(y, tau) [n_frames] of centred scaled positions y [n_frames, n_beads, 3] at the
        continuous time ``tau`` (0 < tau <= 1, step tau T), differentiable in the
        parameters: d_tau log q - beta / 2 (y . grad log q + lap log q + |grad log q|^2),
        log q = -E_net(y, tau T) / sigma(tau) (the constant d beta / 2 left out)."""
        n = len(y)
        with torch.enable_grad():
            y = y.detach().requires_grad_(True)
            taus = torch.full((n,), float(tau), dtype=y.dtype, device=y.device)
            taus.requires_grad_(True)
            abar, beta = continuous_schedule(taus)
            log_q = -self.noise_energy(y, taus * self.steps) / (1 - abar).sqrt()
            score, d_tau = torch.autograd.grad(log_q.sum(), (y, taus), create_graph=True)
            flat = score.reshape(n, -1)
            d = flat.shape[1]
            # Exact: one Hessian-vector product per coordinate, all of them in one batched
            # (vmapped) backward pass (twice as fast as a loop over the coordinates).
            basis = torch.eye(d, dtype=y.dtype, device=y.device).unsqueeze(1).expand(d, n, d)
            (rows,) = torch.autograd.grad(
                flat, y, grad_outputs=basis, create_graph=True, is_grads_batched=True
            )
            laplacian = rows.reshape(d, n, d).diagonal(dim1=0, dim2=2).sum(dim=-1)
            drift = (y * score).sum(dim=(1, 2)) + laplacian + score.pow(2).sum(dim=(1, 2))
            return d_tau - 0.5 * beta.detach() * drift

    # --- the force field --------------------------------------------------------------------
    def energy(self, positions: torch.Tensor) -> torch.Tensor:
        t = torch.full((positions.shape[0],), self.force_noise, device=positions.device)
        shrink = self.abar[self.force_noise].sqrt()
        y = positions / self.scale * shrink
        return self.kT * self.noise_energy(y, t) / self.sigma(t)

    # --- the i.i.d. sampler -------------------------------------------------------------------
    @torch.no_grad()
    def sample(
        self,
        n_frames: int,
        *,
        generator: torch.Generator,
        batch_size: int = 1024,
        steps: int | None = None,
        clip: float = CLIP,
    ) -> torch.Tensor:
        """[n_frames, n_beads, 3] i.i.d. configurations (nm, centred) by ancestral
        sampling of the reverse process (Ho et al. 2020) from y_T ~ N(0, 1), over all T
        steps or, with ``steps`` = k < T, over k of them evenly spaced from T to 1 (the
        "respaced" process of Nichol & Dhariwal 2021: the same formulas between
        consecutive chosen steps t > s, whose alpha = abar_t / abar_s). At each step
        the clean frame is estimated, y0_hat = (y_t - sigma_t eps_hat) / sqrt(abar_t),
        clipped to [-clip, clip] (scaled units), and y_s drawn from the posterior
        q(y_s | y_t, y0_hat): mean (sqrt(abar_s) beta y0_hat + sqrt(alpha) sigma_s^2 y_t)
        / sigma_t^2, variance beta sigma_s^2 / sigma_t^2 with beta = 1 - alpha, no noise
        at the last step; z centred. Unclipped, this is y_s = (y_t - beta / sigma_t
        eps_hat) / sqrt(alpha) + noise; the clip keeps the first steps, where
        1 / sqrt(alpha_t) is up to 30 and an error of eps_hat is amplified as much, from
        throwing beads out (the default ala2 model's unclipped samples had bonds of
        hundreds of nm). After every step a frame whose signed dihedrals vote for the mirror
        image of the training frames' hand is inverted (:meth:`mirrored`). Draws come from
        ``generator`` (CPU)."""
        device = self.abar.device
        abar = self.abar.double()
        if steps is not None and not 1 <= steps:
            raise ValueError(f"steps must be at least 1, got {steps}")
        count = self.steps if steps is None else min(int(steps), self.steps)
        chosen = torch.linspace(self.steps, 1, count).round().long().unique().flip(0).tolist()
        out, reflected = [], 0
        for start in range(0, n_frames, batch_size):
            n = min(batch_size, n_frames - start)
            like = torch.empty((), dtype=torch.float32, device=device)
            y = centred_noise((n, self.n_beads, 3), generator, like)
            for step, previous in zip(chosen, [*chosen[1:], 0], strict=True):
                t = torch.full((n,), step, device=device)
                a_t, a_prev = float(abar[step]), float(abar[previous])
                alpha, beta = a_t / a_prev, 1 - a_t / a_prev
                eps = self.predicted_noise(y, t)
                y0 = ((y - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)).clamp(-clip, clip)
                y = (math.sqrt(a_prev) * beta * y0 + math.sqrt(alpha) * (1 - a_prev) * y) / (
                    1 - a_t
                )
                if step > 1:
                    variance = beta * (1 - a_prev) / (1 - a_t)
                    y = y + math.sqrt(variance) * centred_noise(y.shape, generator, y)
                y = y - y.mean(dim=1, keepdim=True)  # rounding must not move the centre
                mirrored = self.mirrored(y)
                y = torch.where(mirrored.view(-1, 1, 1), -y, y)
            reflected += int(mirrored.sum())
            out.append(y * self.scale)
        log.info(
            "%d of %d draws were inverted at the last step to the data's hand", reflected, n_frames
        )
        return torch.cat(out)


@MODELS.register("diffusion_fp")
class RegularisedDiffusion(DiffusionModel):
    """The diffusion model under a name of its own whose section's
    ``fokker_planck_weight`` is above 0 (the Fokker-Planck regulariser on), so that one
    study trains, samples and scores it beside ``diffusion`` on the same folds."""
