"""Physics of the CG energy models: symmetry, conservative forces, checkpoints (the
neighbour list: test_neighbours.py)."""

import numpy as np
import pytest
import torch

from cgpipe.io import Provenance, read_provenance
from cgpipe.models import (
    CHECKPOINT_FORMAT,
    MODELS,
    EnergyModel,
    fit_prior,
    load_model,
    save_model,
)

TYPES = [0, 2, 1, 0, 2]  # C N CA C N: the two C and the two N are alike
BONDS = np.array([[0, 1], [1, 2], [2, 3], [3, 4]])
SCHNET = {
    "hidden_channels": 16,
    "num_filters": 16,
    "num_interactions": 2,
    "num_gaussians": 12,
    "cutoff": 0.8,
}


def _chain(n_frames: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array(
        [[0.0, 0, 0], [0.13, 0.05, 0], [0.2, 0.16, 0.02], [0.33, 0.17, 0.07], [0.4, 0.28, 0.05]]
    )
    return base + rng.normal(scale=0.01, size=(n_frames, 5, 3))


@pytest.fixture(scope="module")
def model() -> EnergyModel:
    torch.manual_seed(0)
    prior = fit_prior(_chain(500), BONDS, 300.0, bins=20)
    section = {"trainer": "force_matching", **SCHNET}
    return (
        MODELS.get("cgschnet").from_config(section, bead_types=TYPES, prior=prior).double().eval()
    )


def _random_rotation(seed: int) -> torch.Tensor:
    q, r = torch.linalg.qr(
        torch.randn(3, 3, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    )
    q = q * torch.sign(torch.diagonal(r))
    if torch.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


def test_energy_is_invariant_under_rotation_and_translation(model):
    x = torch.tensor(_chain(8, seed=1))
    rotated = x @ _random_rotation(3).T + torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close(model(rotated), model(x), rtol=1e-10, atol=1e-9)


def test_forces_rotate_with_the_frame(model):
    x = torch.tensor(_chain(4, seed=2))
    rotation = _random_rotation(4)
    _, forces = model.energy_and_forces(x)
    _, rotated_forces = model.energy_and_forces(x @ rotation.T)
    torch.testing.assert_close(rotated_forces, forces @ rotation.T, rtol=1e-8, atol=1e-8)


def test_network_energy_is_invariant_under_permutation_of_equal_beads(model):
    x = torch.tensor(_chain(3, seed=5))
    # Swapping two beads of the same type changes nothing the network can tell apart;
    # the prior is excluded because its bonds name specific beads.
    swapped = x[:, [3, 1, 2, 0, 4]]
    types = model.bead_types
    network = model.network
    torch.testing.assert_close(network(types, swapped), network(types, x), rtol=1e-10, atol=1e-9)
    assert types[0] == types[3]
    # ... while swapping beads of different types does change it.
    assert not torch.allclose(network(types, x[:, [1, 0, 2, 3, 4]]), network(types, x))


def test_forces_are_minus_the_gradient_by_finite_differences(model):
    x = torch.tensor(_chain(2, seed=6))
    _, forces = model.energy_and_forces(x)
    h = 1e-6
    numeric = torch.zeros_like(x)
    for bead in range(5):
        for axis in range(3):
            step = torch.zeros_like(x)
            step[:, bead, axis] = h
            numeric[:, bead, axis] = -(model(x + step) - model(x - step)) / (2 * h)
    torch.testing.assert_close(forces, numeric, rtol=1e-5, atol=1e-4)


def test_training_graph_can_be_differentiated_twice(model):
    x = torch.tensor(_chain(4, seed=7))
    _, forces = model.energy_and_forces(x, create_graph=True)
    loss = (forces**2).mean()
    gradients = torch.autograd.grad(
        loss, [p for p in model.network.parameters()], allow_unused=True
    )
    assert any(g is not None and g.abs().sum() > 0 for g in gradients)


def test_checkpoint_round_trip_loads_without_pickles(tmp_path, model):
    path = tmp_path / "model.pt"
    save_model(path, model, Provenance("train", {"epochs": 1}), temperature=300.0)
    torch.load(path, weights_only=True)  # would raise on arbitrary objects
    back = load_model(path).double()
    x = torch.tensor(_chain(3, seed=8))
    torch.testing.assert_close(back(x), model(x))
    assert read_provenance(path)["config"] == {"epochs": 1}
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["kind"] == "cgschnet" and checkpoint["format_version"] == CHECKPOINT_FORMAT


def test_interactions_are_made_as_torch_geometrics_are():
    """The same seed gives the same weights under the same names as torch-geometric's
    SchNet layers, so that checkpoints and seeded runs carry over (the energy against
    their message passing: test_neighbours.py)."""
    pyg = pytest.importorskip("torch_geometric.nn.models.schnet")
    from cgpipe.models.schnet import GaussianSmearing, InteractionBlock

    torch.manual_seed(5)
    ours = InteractionBlock(16, 12, 8)
    torch.manual_seed(5)
    theirs = pyg.InteractionBlock(16, 12, 8, 0.8)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for name, tensor in theirs.state_dict().items():
        assert torch.equal(ours.state_dict()[name], tensor), name
    r = torch.linspace(0.0, 0.8, 17)
    torch.testing.assert_close(
        GaussianSmearing(0.0, 0.8, 12)(r), pyg.GaussianSmearing(0.0, 0.8, 12)(r), rtol=0, atol=0
    )
