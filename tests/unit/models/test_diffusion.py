"""The diffusion model against the one distribution whose score is known at every noise
level: frames of independent Gaussian beads. With that exact score in place of the
network, reverse diffusion must draw the Gaussian, and the force field at the small
noise level must be its Boltzmann force; trained, the network must approach the exact
denoiser's loss; and, as every model, it is invariant and conservative."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cgpipe.config import load_config
from cgpipe.io import Provenance
from cgpipe.models import MODELS, load_model, save_model
from cgpipe.models.diffusion import (
    DiffusionModel,
    centred_noise,
    continuous_schedule,
    cosine_schedule,
)
from cgpipe.models.priors.geometry import dihedral_angles
from cgpipe.train import TRAINERS, TrainingData
from cgpipe.units import thermal_energy

N_BEADS = 4
VARIANCE = 0.04  # nm^2 per coordinate of the Gaussian beads
SMALL = {
    "hidden_channels": 16,
    "num_filters": 16,
    "num_interactions": 2,
    "num_gaussians": 16,
    "cutoff": 2.0,
}


def _model(steps: int = 1000, force_noise: int = 8, temperature: float = 300.0):
    torch.manual_seed(0)
    return DiffusionModel(
        [0, 1, 1, 0], temperature=temperature, steps=steps, force_noise=force_noise, **SMALL
    )


def _exact(model: DiffusionModel, variance: float):
    """E(y, t) whose y-gradient is E[eps | y_t] for centred Gaussian beads of ``variance``
    (nm^2) per coordinate: in the subspace of zero centre y_t is isotropic normal of
    variance abar v' + sigma^2 (v' = variance / scale^2), so eps_hat = sigma y / (abar v' +
    sigma^2)."""

    def noise_energy(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        abar = model.abar[t].to(y.dtype)
        sigma2 = 1 - abar
        v = variance / float(model.scale) ** 2
        centred = y - y.mean(dim=1, keepdim=True)
        return sigma2.sqrt() * (centred**2).sum(dim=(1, 2)) / (2 * (abar * v + sigma2))

    return noise_energy


def test_the_cosine_schedule_falls_from_one_to_nearly_zero():
    abar = cosine_schedule(1000)
    assert abar[0] == 1 and torch.all(torch.diff(abar) < 0) and abar[-1] < 1e-4
    # The anchors' force step: about 1e-4 of noise variance.
    assert 1e-5 < 1 - abar[8] < 1e-3


def test_reverse_diffusion_with_the_exact_score_draws_the_gaussian():
    model = _model(steps=1000)
    model.scale.fill_(math.sqrt(VARIANCE) * 0.7)  # not the data's own scale
    model.noise_energy = _exact(model, VARIANCE)
    # Every step, and the schedule respaced to 250 of its 1000 (the plug-in posterior
    # mean leaves out y0's posterior spread: at 100 steps the variance came out 3 % low,
    # at 50 steps 8 %, at 250 steps 0.6 % +- 0.6 %).
    for steps in (None, 250):
        samples = model.sample(
            1500, generator=torch.Generator().manual_seed(1), batch_size=1500, steps=steps
        )
        assert samples.shape == (1500, N_BEADS, 3)
        torch.testing.assert_close(samples.mean(dim=1), torch.zeros(1500, 3), atol=1e-5, rtol=0)
        # Centred independent beads: each coordinate's variance is v (1 - 1/n).
        expected = VARIANCE * (1 - 1 / N_BEADS)
        variance = float(samples.double().pow(2).mean())
        dof = 1500 * 3 * (N_BEADS - 1)
        assert abs(variance - expected) < 4 * expected * math.sqrt(2 / dof), (variance, expected)


def test_the_force_field_is_the_boltzmann_force_of_the_data():
    for temperature in (300.0, 450.0):
        model = _model(temperature=temperature)
        model.scale.fill_(math.sqrt(VARIANCE))
        model.noise_energy = _exact(model, VARIANCE)
        x = torch.randn(5, N_BEADS, 3, generator=torch.Generator().manual_seed(3)) * 0.2
        _, forces = model.energy_and_forces(x)
        centred = x - x.mean(dim=1, keepdim=True)
        exact = -thermal_energy(temperature) * centred / VARIANCE  # -grad of kT |x|^2 / 2v
        # The noise left at the force step biases it by about sigma_f^2 / v' = 2e-4.
        torch.testing.assert_close(forces, exact, rtol=1e-3, atol=1e-3)


def _gaussian_training(n_frames: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(scale=math.sqrt(VARIANCE), size=(n_frames, N_BEADS, 3))


def _trainer(epochs: int, **options):
    """A denoising trainer of ``epochs`` that never stops early."""
    defaults = {
        "batch_size": 64,
        "weight_decay": 0.0,
        "validation_frames": 200,
        "low_noise_steps": 0,
        "low_noise_weight": 1.0,
    }
    return TRAINERS.get("denoising")(epochs=epochs, patience=epochs, **{**defaults, **options})


def test_denoising_training_approaches_the_exact_denoisers_loss():
    trainer = _trainer(epochs=12, learning_rate=0.01, validation_frames=400)
    model = _model(steps=100)
    data = TrainingData(_gaussian_training(600, 0), None, _gaussian_training(200, 1), None, fold=0)
    result = trainer.fit(model, data, generator=torch.Generator().manual_seed(4), device="cpu")
    assert math.isclose(float(model.scale), math.sqrt(VARIANCE * 0.75), rel_tol=0.05)
    held_out = torch.as_tensor(_gaussian_training(400, 2), dtype=torch.float32)
    trained = trainer.score(model, held_out, None)
    oracle = _model(steps=100)
    oracle.scale.fill_(float(model.scale))
    oracle.noise_energy = _exact(oracle, VARIANCE)
    best = trainer.score(oracle, held_out, None)
    # The exact denoiser's loss is E[sigma^2 v' / (abar v' + sigma^2)] < 1; no predictor
    # does better, predicting no noise scores 1.
    assert best < trained < 1.0
    assert trained < best + 0.1 * (1.0 - best), (trained, best)
    assert result.validation_loss == pytest.approx(
        min(r["loss"] for r in result.records if r["split"] == "validation")
    )


def test_the_energy_is_invariant_and_its_forces_conservative():
    model = _model().double()
    model.scale.fill_(0.2)
    x = torch.randn(3, N_BEADS, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    moved = x @ q.T + torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
    torch.testing.assert_close(model(moved), model(x))
    swapped = x[:, [0, 2, 1, 3]]  # beads 1 and 2 share a type
    torch.testing.assert_close(model(swapped), model(x))
    energy, forces = model.energy_and_forces(x)
    h = 1e-6
    shifted = x.clone()
    shifted[0, 1, 2] += h
    numeric = (model(shifted)[0] - energy[0]).detach() / h
    assert float(numeric) == pytest.approx(-float(forces[0, 1, 2]), rel=1e-4, abs=1e-6)
    torch.testing.assert_close(forces.sum(dim=1), torch.zeros(3, 3, dtype=torch.float64))


def test_a_checkpoint_keeps_the_scale_the_schedule_and_the_temperature(tmp_path):
    model = _model(temperature=320.0)
    model.scale.fill_(0.37)
    x = torch.randn(2, N_BEADS, 3, generator=torch.Generator().manual_seed(6))
    save_model(tmp_path / "m.pt", model, Provenance("train", {}, []), temperature=320.0)
    loaded = load_model(tmp_path / "m.pt")
    assert isinstance(loaded, MODELS.get("diffusion")) and float(loaded.scale) == pytest.approx(
        0.37
    )
    torch.testing.assert_close(loaded(x), model(x))
    assert centred_noise((2, N_BEADS, 3), None, x).shape == x.shape


def test_signed_dihedrals_tell_a_configuration_from_its_mirror_image():
    """With the quadruples of its map the energy is invariant under rotation, not
    reflection: a chiral molecule and its mirror image differ (an energy of distances
    alone gives both the same, and reverse diffusion then draws a racemate)."""
    torch.manual_seed(1)
    model = DiffusionModel(
        [0, 1, 1, 0],
        temperature=300.0,
        steps=100,
        force_noise=2,
        quadruples=[[0, 1, 2, 3]],
        **SMALL,
    ).double()
    blind = _model(steps=100, force_noise=2).double()
    x = torch.randn(4, N_BEADS, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    mirror = x * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
    q = q * torch.sign(torch.det(q))  # a proper rotation
    torch.testing.assert_close(model(x @ q.T + 0.5), model(x))
    torch.testing.assert_close(blind(mirror), blind(x))
    assert (model(mirror) - model(x)).abs().min() > 1e-6


def _gaussian_family(model: DiffusionModel, variance_at: callable):
    """E(y, t) = sigma |y_c|^2 / (2 s(tau)), tau = t / T, in continuous time: log q =
    -|y_c|^2 / (2 s(tau)), a centred Gaussian of variance s(tau) per coordinate."""

    def noise_energy(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        tau = t / model.steps
        abar, _ = continuous_schedule(tau)
        centred = y - y.mean(dim=1, keepdim=True)
        return (1 - abar).sqrt() * (centred**2).sum(dim=(1, 2)) / (2 * variance_at(abar))

    return noise_energy


def test_the_fokker_planck_residual_is_constant_for_the_forward_process_densities():
    # Gaussian data of variance v: the forward process's densities are Gaussians of
    # variance s = abar v + 1 - abar; their Fokker-Planck residual (without d beta / 2) is
    # -beta / 2 lap log q = beta D / (2 s), D = 3 (n - 1) the dimension of zero centre, the
    # same for every y (analytic). A family whose variance does not follow the process
    # (v at every tau) has a residual that grows with |y|^2.
    model = _model(steps=1000).double()
    v = 0.3
    y = torch.randn(64, N_BEADS, 3, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    y = y - y.mean(dim=1, keepdim=True)
    for tau in (0.004, 0.05, 0.5):
        model.noise_energy = _gaussian_family(model, lambda abar: abar * v + 1 - abar)
        residual = model.fokker_planck_residual(y, tau)
        abar, beta = continuous_schedule(torch.tensor(tau, dtype=torch.float64))
        s = abar * v + 1 - abar
        expected = beta * 3 * (N_BEADS - 1) / (2 * s)
        torch.testing.assert_close(residual, expected.expand(64), rtol=1e-8, atol=1e-8)
        model.noise_energy = _gaussian_family(model, lambda abar: torch.full_like(abar, v))
        wrong = model.fokker_planck_residual(y, tau)
        assert float(wrong.detach().std() / beta) > 1.0


def test_the_continuous_schedule_is_the_discrete_one_at_the_steps():
    steps = 1000
    discrete = cosine_schedule(steps)
    tau = torch.arange(1, steps, dtype=torch.float64) / steps
    abar, beta = continuous_schedule(tau)
    torch.testing.assert_close(abar[:900], discrete[1:901], rtol=1e-9, atol=1e-12)
    # beta = -d ln abar / dtau: the discrete steps' log ratio per unit tau.
    finite = -(discrete[2:901].log() - discrete[0:899].log()) / (2 / steps)
    torch.testing.assert_close(beta[:899], finite, rtol=1e-3, atol=1e-6)


def test_the_regulariser_lowers_the_residual_spread_it_penalises():
    # Training with diffusion_fp's default Fokker-Planck weight lowers the penalty on fresh
    # frames against the same training without it (same seed, data and steps), at little
    # cost to the denoising it is added to (measured: penalty 87 -> 6.7, validation loss
    # 0.62 -> 0.65; a weight of 1 leaves it at 1.0, that of predicting no noise).
    weight_default = load_config(None)["models"]["diffusion_fp"]["fokker_planck_weight"]
    data = TrainingData(_gaussian_training(256, 2), None, _gaussian_training(32, 3), None, fold=0)
    trainer = TRAINERS.get("denoising")(
        epochs=6,
        batch_size=32,
        learning_rate=3e-3,
        weight_decay=0.0,
        validation_frames=32,
        patience=100,
        low_noise_steps=20,
        low_noise_weight=1.0,
    )
    penalties, losses = {}, {}
    fresh = torch.as_tensor(_gaussian_training(16, seed=9), dtype=torch.float32)
    for weight in (0.0, weight_default):
        torch.manual_seed(0)
        model = DiffusionModel(
            [0, 1, 1, 0],
            temperature=300.0,
            steps=100,
            force_noise=2,
            fokker_planck_weight=weight,
            **{**SMALL, "num_interactions": 1},
        )
        fit = trainer.fit(
            model, data, generator=torch.Generator().manual_seed(1), device=torch.device("cpu")
        )
        losses[weight] = fit.validation_loss
        y0 = (fresh - fresh.mean(dim=1, keepdim=True)) / model.scale
        draws = [
            float(
                trainer.fokker_planck_penalty(model, y0, torch.Generator().manual_seed(k)).detach()
            )
            for k in range(8)
        ]
        penalties[weight] = float(np.mean(draws))
    assert penalties[weight_default] < 0.25 * penalties[0.0], penalties
    assert losses[weight_default] < 1.1 * losses[0.0], losses


def _bonded_model(**options):
    torch.manual_seed(0)
    return DiffusionModel(
        [0, 1, 1, 0],
        temperature=300.0,
        steps=100,
        force_noise=2,
        bonds=[[0, 1], [1, 2], [2, 3]],
        angles=[[0, 1, 2], [1, 2, 3]],
        **{**SMALL, **options},
    )


def test_the_bonded_terms_are_invariant_under_isometries_and_conservative():
    model = _bonded_model().double()
    x = torch.randn(8, N_BEADS, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    model.fit_statistics(x)
    assert torch.all(model.bond_statistics[:, 1] > 0) and model.angle_statistics.shape == (2, 4)
    for t in (1, 50, 100):  # the features are standardised to each noise level
        steps = torch.full((8,), t)
        q, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))
        moved = x @ q.T + torch.tensor([0.3, -1.0, 2.0], dtype=torch.float64)
        torch.testing.assert_close(model.noise_energy(moved, steps), model.noise_energy(x, steps))
        mirrored = x * torch.tensor([-1.0, 1.0, 1.0], dtype=torch.float64)  # no dihedrals
        torch.testing.assert_close(
            model.noise_energy(mirrored, steps), model.noise_energy(x, steps)
        )
    energy, forces = model.energy_and_forces(x)
    h = 1e-6
    shifted = x.clone()
    shifted[2, 3, 0] += h
    numeric = (model(shifted)[2] - energy[2]).detach() / h
    assert float(numeric) == pytest.approx(-float(forces[2, 3, 0]), rel=1e-4, abs=1e-6)


def test_the_bond_term_resolves_a_bond_far_narrower_than_the_radial_basis():
    """A chain of four beads whose bonds are 0.15 +- 0.003 nm, loosely jointed: the SchNet
    body's Gaussians lie 0.13 nm apart, so only the bond term can draw bonds this narrow."""
    rng = np.random.default_rng(8)

    def chains(n: int) -> np.ndarray:
        steps = rng.normal(size=(n, N_BEADS - 1, 3))
        steps /= np.linalg.norm(steps, axis=-1, keepdims=True)
        steps[:, 1] = 0.6 * steps[:, 1] + 0.8 * steps[:, 0] / 1.0  # a stiffish angle
        steps /= np.linalg.norm(steps, axis=-1, keepdims=True)
        lengths = rng.normal(0.15, 0.003, size=(n, N_BEADS - 1, 1))
        x = np.concatenate([np.zeros((n, 1, 3)), np.cumsum(steps * lengths, axis=1)], axis=1)
        return x - x.mean(axis=1, keepdims=True)

    trainer = _trainer(epochs=15, learning_rate=0.005, low_noise_steps=10, low_noise_weight=10.0)
    data = TrainingData(chains(1500), None, chains(200), None, fold=0)
    spreads = {}
    for bonded in (True, False):
        model = _bonded_model() if bonded else _model(steps=100, force_noise=2)
        trainer.fit(model, data, generator=torch.Generator().manual_seed(9), device="cpu")
        x = model.sample(400, generator=torch.Generator().manual_seed(10)).double()
        lengths = torch.linalg.vector_norm(x[:, 1:] - x[:, :-1], dim=-1)
        spreads[bonded] = float((lengths - 0.15).pow(2).mean().sqrt())
    # The data's own RMS deviation is 0.003 nm; 15 short epochs get within a few times it
    # with the bond term (0.013 nm), and several times further without (0.059 nm).
    assert spreads[True] < 0.02, spreads
    assert spreads[False] > 3 * spreads[True], spreads


def test_draws_take_the_hand_of_the_training_frames():
    """Beads 0-3 form a chiral centre (the improper (0, 2, 3, 1) keeps its sign in every
    training frame), while the dihedral (1, 2, 3, 4) takes both signs: only the first fixes
    the hand, and every draw, even an untrained model's, has it."""
    torch.manual_seed(0)
    model = DiffusionModel(
        [0, 1, 2, 3, 0],
        temperature=300.0,
        steps=50,
        force_noise=2,
        quadruples=[[1, 2, 3, 4], [0, 2, 3, 1]],
        dihedral_pairs=[[0, 1]],  # a joint term of both (they share three beads)
        **SMALL,
    )
    rng = np.random.default_rng(11)
    x = torch.as_tensor(rng.normal(scale=0.2, size=(800, 5, 3)), dtype=torch.float32)
    x = x[dihedral_angles(x, model.quadruples)[:, 1] > 0]  # one hand only
    model.fit_statistics(x)
    assert model.handedness.tolist() == [0.0, 1.0]
    assert not model.mirrored(x).any() and model.mirrored(-x).all()
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(13)))
    q = q * torch.sign(torch.linalg.det(q))  # a rotation
    steps = torch.full((len(x),), 10)
    torch.testing.assert_close(model.noise_energy(x @ q.T, steps), model.noise_energy(x, steps))
    assert not torch.allclose(model.noise_energy(-x, steps), model.noise_energy(x, steps))
    draws = model.sample(300, generator=torch.Generator().manual_seed(12))
    assert torch.all(dihedral_angles(draws, model.quadruples)[:, 1] > 0)
