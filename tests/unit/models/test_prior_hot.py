"""The ``prior_hot`` negative control samples the prior's ensemble at its stated
temperature: on a harmonic bond, Langevin dynamics at T gives a bond-length variance
T_control / T times the prior's."""

import numpy as np
import pytest
import torch

from cgpipe.models import MODELS, fit_prior
from cgpipe.simulate.baoab import BAOAB
from cgpipe.units import thermal_energy

TEMPERATURE, CONTROL = 300.0, 900.0  # K


@pytest.fixture(scope="module")
def bond_prior():
    """The prior of one harmonic bond (k = 5000 kJ/mol/nm^2, r0 = 0.38 nm) fitted at 300 K
    to exact Boltzmann samples of its length."""
    k, r0 = 5000.0, 0.38
    rng = np.random.default_rng(0)
    sigma = np.sqrt(thermal_energy(TEMPERATURE) / k)
    r = rng.normal(r0, sigma, size=200_000)
    r = r[rng.uniform(size=r.size) < (r / (r0 + 5 * sigma)) ** 2]
    direction = rng.normal(size=(r.size, 3))
    direction /= np.linalg.norm(direction, axis=1, keepdims=True)
    positions = np.stack([np.zeros_like(direction), direction * r[:, None]], axis=1)
    return fit_prior(positions, np.array([[0, 1]]), TEMPERATURE, bins=60)


def _bond_variance(model, seed: int) -> float:
    model = model.double()
    generator = torch.Generator().manual_seed(seed)
    masses = torch.tensor([40.0, 40.0], dtype=torch.float64)
    integrator = BAOAB(model.energy_and_forces, masses, 0.002, generator, friction=5.0)
    x = torch.zeros(512, 2, 3, dtype=torch.float64)
    x[:, 1, 0] = 0.38
    kT = torch.full((512,), thermal_energy(TEMPERATURE), dtype=torch.float64)
    state = integrator.start(x, kT)
    lengths = []
    for step in range(1500):
        state = integrator.step(state)
        if step >= 300 and step % 5 == 0:
            x = state.positions
            lengths.append(torch.linalg.vector_norm(x[:, 1] - x[:, 0], dim=-1))
    return float(torch.stack(lengths).var())


def test_the_hot_prior_scales_every_term_by_the_temperature_ratio(bond_prior):
    prior = MODELS.get("prior")(bead_types=[0, 0], prior=bond_prior.hparams)
    hot = MODELS.get("prior_hot")(bead_types=[0, 0], prior=bond_prior.hparams, temperature=CONTROL)
    x = torch.tensor([[[0.0, 0.0, 0.0], [0.41, 0.02, 0.0]]])
    torch.testing.assert_close(hot(x), prior(x) * TEMPERATURE / CONTROL)
    assert hot.hparams["temperature"] == CONTROL
    # Its prior alone is the fold's prior, unscaled.
    torch.testing.assert_close(hot.prior_model()(x), prior(x))


def test_the_hot_prior_samples_a_broader_ensemble(bond_prior):
    prior = MODELS.get("prior")(bead_types=[0, 0], prior=bond_prior.hparams)
    hot = MODELS.get("prior_hot")(bead_types=[0, 0], prior=bond_prior.hparams, temperature=CONTROL)
    cold, warm = _bond_variance(prior, seed=1), _bond_variance(hot, seed=2)
    assert cold == pytest.approx(thermal_energy(TEMPERATURE) / 5000.0, rel=0.1)
    assert warm / cold == pytest.approx(CONTROL / TEMPERATURE, rel=0.1)
