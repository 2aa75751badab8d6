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

from cgpipe.io import Provenance
from cgpipe.models import MODELS, load_model, save_model
from cgpipe.models.diffusion import DiffusionModel, centred_noise, cosine_schedule
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
    samples = model.sample(1500, generator=torch.Generator().manual_seed(1), batch_size=1500)
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


def test_denoising_training_approaches_the_exact_denoisers_loss():
    trainer = TRAINERS.get("denoising")(
        epochs=12,
        batch_size=64,
        learning_rate=0.01,
        weight_decay=0.0,
        validation_frames=400,
        patience=12,
        low_noise_steps=0,
        low_noise_weight=1.0,
    )
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
