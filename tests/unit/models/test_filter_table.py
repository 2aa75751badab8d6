"""SchNet's filters from a cubic Hermite table of the pair distance: values and forces
against the exact filter network in double precision, the hand-written backward against
finite differences, and the table dropped when the model trains again."""

from __future__ import annotations

import logging
import math

import pytest
import torch

from cgpipe.models.filter_table import FilterTable
from cgpipe.models.schnet import SchNet
from cgpipe.simulate import compiled

WIDTHS = {
    "hidden_channels": 16,
    "num_filters": 16,
    "num_interactions": 2,
    "num_gaussians": 20,
    "cutoff": 0.9,
}


@pytest.fixture
def network() -> SchNet:
    torch.manual_seed(3)
    net = SchNet(num_types=3, **WIDTHS).double().eval()
    # Larger weights than the initialisation, so that the filters vary as a trained
    # network's do (a trained filter is not smoother than its Gaussians).
    with torch.no_grad():
        for interaction in net.interactions:
            for layer in interaction.conv.nn:
                if isinstance(layer, torch.nn.Linear):
                    layer.weight.mul_(3.0)
    return net


def _exact_filters(net: SchNet, r: torch.Tensor) -> list[torch.Tensor]:
    # torch-geometric's CFConv damping, written out here rather than taken from cgpipe
    cosine = 0.5 * (torch.cos(r * math.pi / net.cutoff) + 1.0)
    basis = net.distance_expansion(r)
    return [i.conv.nn(basis) * cosine.view(-1, 1) for i in net.interactions]


def _energy_and_forces(net: SchNet, types: torch.Tensor, x: torch.Tensor):
    x = x.clone().requires_grad_(True)
    energy = net(types, x)
    (gradient,) = torch.autograd.grad(energy.sum(), x)
    return energy.detach(), -gradient


def test_tabulated_filters_and_their_slopes_match_the_network(network):
    r = torch.rand(4000, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    r = (r * network.cutoff).requires_grad_(True)
    exact = _exact_filters(network, r)
    network.tabulate(16)
    table = network.filter_table(r)
    for e, t in zip(exact, table, strict=True):
        scale = float(e.detach().abs().max())
        assert float((t - e).abs().max()) < 1e-6 * scale
        for channel in (0, 7, 15):  # d filter / dr through the hand-written backward
            (de,) = torch.autograd.grad(e[:, channel].sum(), r, retain_graph=True)
            (dt,) = torch.autograd.grad(t[:, channel].sum(), r, retain_graph=True)
            assert float((dt - de).abs().max()) < 1e-4 * float(de.abs().max())


def test_a_coarse_table_is_detectably_wrong(network):
    """The accuracy test above can fail: two points per Gaussian width are not enough."""
    r = torch.linspace(0.0, network.cutoff, 3001, dtype=torch.float64)
    exact = _exact_filters(network, r)
    network.tabulate(2)
    coarse = network.filter_table(r)
    assert (
        max(float((c - e).abs().max() / e.abs().max()) for c, e in zip(coarse, exact, strict=True))
        > 1e-4
    )


def test_the_table_backward_is_the_derivative_of_its_forward():
    table = FilterTable(
        [lambda r: torch.stack([torch.sin(5 * r), r**3], dim=-1)],
        1.0,
        10,
        dtype=torch.float64,
        device=torch.device("cpu"),
    )
    r = torch.tensor([0.03, 0.31, 0.5, 0.77, 0.999], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda d: table(d)[0], (r,))


@pytest.mark.parametrize("n_frames", [3, 40])  # all pairs, and a Verlet list
def test_tabulated_energies_and_forces_match_the_exact_ones(network, n_frames):
    network.neighbours.max_all_pairs = 3 * 8 * 7
    generator = torch.Generator().manual_seed(n_frames)
    x = 0.35 * torch.randn(n_frames, 8, 3, dtype=torch.float64, generator=generator)
    types = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    energy, forces = _energy_and_forces(network, types, x)
    network.tabulate(16)
    tab_energy, tab_forces = _energy_and_forces(network, types, x)
    torch.testing.assert_close(tab_energy, energy, rtol=0, atol=1e-6 * float(energy.abs().max()))
    # the simulate stage's tolerance (compiled.TABLE_RTOL)
    torch.testing.assert_close(tab_forces, forces, rtol=0, atol=1e-4 * float(forces.abs().max()))


def test_training_drops_the_table(network):
    network.tabulate(16)
    assert network.filter_table is not None
    network.eval()
    assert network.filter_table is not None
    network.train()
    assert network.filter_table is None


def test_the_simulate_stage_tabulates_checks_and_falls_back(network, monkeypatch, caplog):
    """`compiled.tabulate` keeps a table whose forces agree, and drops one that does not."""
    from cgpipe.models import MODELS

    torch.manual_seed(0)
    model = MODELS.get("cgschnet")(bead_types=[0, 1, 2, 0, 1], prior=None, **WIDTHS).eval()
    x = 0.3 * torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0))
    exact = model.energy_and_forces(x)[1]
    with caplog.at_level(logging.INFO):
        forces = compiled.energy_and_forces(model, x, compile=False, filter_table=16)
    assert model.network.filter_table is not None
    assert "tabulated" in caplog.text
    torch.testing.assert_close(forces(x)[1], exact, rtol=0, atol=1e-4 * float(exact.abs().max()))
    monkeypatch.setattr(compiled, "TABLE_RTOL", 0.0)
    with caplog.at_level(logging.WARNING):
        compiled.energy_and_forces(model, x, compile=False, filter_table=16)
    assert model.network.filter_table is None
    assert "running with exact filters" in caplog.text
