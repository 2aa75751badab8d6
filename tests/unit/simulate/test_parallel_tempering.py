"""Parallel tempering samples each rung's Boltzmann distribution, its exchanges keep
Boltzmann distributions (the acceptance rate equals the one computed by quadrature), it
crosses a barrier that plain Langevin dynamics does not, and it resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import integrate

from cgpipe.errors import InputError
from cgpipe.simulate import INTEGRATORS, Health, Simulation, State
from cgpipe.simulate.baoab import BAOAB
from cgpipe.simulate.parallel_tempering import ParallelTempering
from cgpipe.units import thermal_energy

KT0 = thermal_energy(300.0)
HEIGHT, TILT = 6.0, 0.25  # barrier ~ HEIGHT kT0 at the target temperature
LADDER = [1.0, 1.6, 2.5, 4.0]
MASS = 2.0  # amu


def potential(q):
    """U(q) / kT0 of the tilted double well: the well at q = -1 lies ~3 kT0 lower."""
    return HEIGHT * ((q**2 - 1) ** 2 + TILT * q)


def energy_and_forces(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The double well along x of one bead, harmonic (100 kJ/mol/nm^2) across."""
    q = x[:, 0, 0]
    energy = KT0 * potential(q) + 50.0 * (x[:, 0, 1:] ** 2).sum(-1)
    forces = torch.zeros_like(x)
    forces[:, 0, 0] = -KT0 * HEIGHT * (4 * q * (q**2 - 1) + TILT)
    forces[:, 0, 1:] = -100.0 * x[:, 0, 1:]
    return energy, forces


def density(factor: float):
    """Normalised Boltzmann density of q at factor x the target temperature."""
    total = integrate.quad(lambda q: np.exp(-potential(q) / factor), -3, 3)[0]
    return lambda q: np.exp(-potential(q) / factor) / total


def bin_probabilities(edges: np.ndarray, factor: float) -> np.ndarray:
    p = density(factor)
    return np.array(
        [integrate.quad(p, a, b)[0] for a, b in zip(edges[:-1], edges[1:], strict=True)]
    )


def pt(generator: torch.Generator, **options) -> ParallelTempering:
    return ParallelTempering(
        energy_and_forces,
        torch.tensor([MASS], dtype=torch.float64),
        0.005,
        generator,
        friction=5.0,
        ladder=options.get("ladder", LADDER),
        exchange_every=options.get("exchange_every", 20),
    )


def start(n: int) -> torch.Tensor:
    x = torch.zeros(n, 1, 3, dtype=torch.float64)
    x[:, 0, 0] = 1.0  # every replica in the upper well
    return x


def test_it_crosses_the_barrier_that_langevin_does_not_and_samples_boltzmann():
    n, n_steps = 128, 12000
    edges = np.linspace(-1.8, 1.8, 19)
    expected = bin_probabilities(edges, 1.0)
    lower = integrate.quad(density(1.0), -3, 0)[0]  # ~0.95
    results = {}
    for name in ("baoab", "parallel_tempering"):
        generator = torch.Generator().manual_seed(8)
        if name == "baoab":
            integrator = BAOAB(
                energy_and_forces,
                torch.tensor([MASS], dtype=torch.float64),
                0.005,
                generator,
                friction=5.0,
            )
        else:
            integrator = pt(generator)
        state = integrator.start(start(n), torch.full((n,), KT0, dtype=torch.float64))
        samples = []
        for step in range(n_steps):
            state = integrator.step(state)
            if step >= 5000 and step % 10 == 0:  # after 25 ps of equilibration
                rows = state.positions[:: integrator.rungs, 0, 0]  # the target rung
                samples.append(rows.clone())
        results[name] = torch.cat(samples).numpy()
    # Plain Langevin stays mostly where it started; parallel tempering finds the lower
    # well with its Boltzmann weight, and the target rung's marginal is Boltzmann's.
    assert np.mean(results["baoab"] < 0) < 0.5 * lower
    q = results["parallel_tempering"]
    assert np.mean(q < 0) == pytest.approx(lower, abs=0.03)
    observed = np.histogram(q, edges)[0] / len(q)
    np.testing.assert_allclose(observed, expected, atol=0.02)


def _exact_samples(rng: np.random.Generator, factor: float, n: int) -> np.ndarray:
    """n independent draws of q from the Boltzmann density at ``factor`` (inverse CDF on
    a fine grid)."""
    grid = np.linspace(-2.5, 2.5, 20001)
    p = density(factor)(grid)
    cdf = np.cumsum(p)
    cdf /= cdf[-1]
    return np.interp(rng.random(n), cdf, grid)


def test_exchanges_keep_each_rung_boltzmann_at_the_rate_quadrature_gives():
    ladder = [1.0, 2.0]
    rng = np.random.default_rng(0)
    n = 200_000
    q = np.stack([_exact_samples(rng, f, n) for f in ladder], axis=1).reshape(-1)
    x = torch.zeros(2 * n, 1, 3, dtype=torch.float64)
    x[:, 0, 0] = torch.as_tensor(q)
    energies, forces = energy_and_forces(x)
    kT = KT0 * torch.tensor(ladder, dtype=torch.float64).repeat(n)
    state = State(x, torch.zeros_like(x), forces, energies, kT, torch.arange(2 * n), 2 * n)
    integrator = pt(torch.Generator().manual_seed(1), ladder=ladder, exchange_every=1)
    swapped = integrator.exchange(state)
    rate = integrator.accepted[0].item() / integrator.attempts[0].item()
    # Quadrature: <min(1, exp((beta_0 - beta_1)(E_0 - E_1)))> over independent draws.
    p0, p1 = density(1.0), density(2.0)
    grid = np.linspace(-2.5, 2.5, 1201)
    u = potential(grid)
    weights = np.outer(p0(grid), p1(grid)) * (grid[1] - grid[0]) ** 2
    accept = np.minimum(1.0, np.exp((1.0 - 1.0 / 2.0) * (u[:, None] - u[None, :])))
    expected_rate = float((weights * accept).sum() / weights.sum())
    assert rate == pytest.approx(expected_rate, abs=0.005)
    # After the exchange each rung is still distributed as Boltzmann at its temperature.
    edges = np.linspace(-1.8, 1.8, 13)
    after = swapped.positions[:, 0, 0].view(n, 2).numpy()
    for rung, factor in enumerate(ladder):
        observed = np.histogram(after[:, rung], edges)[0] / n
        np.testing.assert_allclose(observed, bin_probabilities(edges, factor), atol=0.005)
    # Velocities moved between rungs are rescaled to their new temperature's.
    assert torch.equal(swapped.kT, state.kT)


def test_a_run_saved_and_resumed_equals_an_uninterrupted_one(tmp_path):
    def build() -> Simulation:
        integrator = pt(torch.Generator().manual_seed(3))
        reference = np.zeros((100, 1, 3))
        health = Health.from_reference(
            reference, np.empty((0, 2), int), min_distance=0.1, max_bond_stretch=1.5, window=0
        )
        state = integrator.start(start(8), torch.full((8,), KT0, dtype=torch.float64))
        return Simulation(integrator, state, health, save_every=10, checkpoint_interval=100)

    whole = build()
    first, _ = whole.advance(30)
    second, _ = whole.advance(30)
    cut = build()
    cut.advance(30)
    saved = cut.state_bytes()
    resumed = build()
    resumed.load_state_bytes(saved)
    again, _ = resumed.advance(30)
    assert torch.equal(second, again)
    assert torch.equal(whole.integrator.accepted, resumed.integrator.accepted)
    assert whole.integrator.attempts.sum() > 0


def test_a_bad_ladder_is_an_input_error_naming_the_key():
    for ladder in ([1.0], [1.2, 1.5], [1.0, 1.5, 1.4]):
        with pytest.raises(InputError, match="simulate.parallel_tempering.ladder"):
            pt(torch.Generator(), ladder=ladder)
    assert "parallel_tempering" in INTEGRATORS
