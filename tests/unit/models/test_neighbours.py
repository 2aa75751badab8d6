"""The neighbour list: the same SchNet energies and forces as the radius graph it replaces,
no pair within the cutoff ever missed, and no host synchronisation."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from cgpipe.config import load_config
from cgpipe.io import Provenance
from cgpipe.models import (
    MODELS,
    EnergyModel,
    NeighbourList,
    NeighbourListOverflow,
    SchNet,
    fit_prior,
    load_model,
    save_model,
)
from cgpipe.models.neighbours import all_pairs
from tests.conftest import REPO
from tests.unit.models.test_schnet import BONDS, _chain

TYPES = torch.tensor([0, 2, 1, 0, 2])
SMALL = {
    "hidden_channels": 16,
    "num_filters": 16,
    "num_interactions": 2,
    "num_gaussians": 12,
    "cutoff": 0.8,
}


def radius_graph(positions: torch.Tensor, cutoff: float) -> torch.Tensor:
    """The radius graph that SchNet used before (``nonzero``: a host sync per call)."""
    n_frames, n_beads, _ = positions.shape
    with torch.no_grad():
        within = torch.cdist(positions, positions) < cutoff
        within &= ~torch.eye(n_beads, dtype=torch.bool, device=positions.device)
        frame, target, source = within.nonzero(as_tuple=True)
    offset = frame * n_beads
    return torch.stack([offset + source, offset + target])


def torch_geometric_interactions(network: SchNet) -> list[torch.nn.Module]:
    """torch-geometric's own ``InteractionBlock`` (its CFConv's message passing) holding
    the weights of each of ``network``'s interactions."""
    pyg = pytest.importorskip("torch_geometric.nn.models.schnet")
    blocks = []
    for ours in network.interactions:
        gaussians, filters = ours.mlp[0].in_features, ours.mlp[0].out_features
        block = pyg.InteractionBlock(ours.lin.in_features, gaussians, filters, network.cutoff)
        block.load_state_dict(ours.state_dict())
        blocks.append(block.to(ours.lin.weight))
    return blocks


def radius_graph_energy(network: SchNet, types: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """SchNet's forward before the neighbour list: torch-geometric's layers with the
    network's weights on the radius graph."""
    n_frames, n_beads, _ = x.shape
    interactions = torch_geometric_interactions(network)
    edge_index = radius_graph(x, network.cutoff)
    flat = x.reshape(-1, 3)
    distances = torch.linalg.vector_norm(flat[edge_index[0]] - flat[edge_index[1]], dim=-1)
    edge_attr = network.distance_expansion(distances)
    h = network.embedding(types).repeat(n_frames, 1)
    for interaction in interactions:
        h = h + interaction(h, edge_index, distances, edge_attr)
    return network.head(h).view(n_frames, n_beads).sum(dim=1)


def energy_and_forces(energy, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().requires_grad_(True)
    e = energy(x)
    (gradient,) = torch.autograd.grad(e.sum(), x)
    return e.detach(), -gradient


def trained_like(network: SchNet, seed: int) -> SchNet:
    """Every parameter drawn at random, biases included (initialisation zeroes them), so
    that a slot beyond the cutoff would show if it leaked through a bias."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return network.double().eval()


def random_frames(n_frames: int, n_beads: int, box: float, seed: int) -> torch.Tensor:
    """Beads uniform in a cube of side ``box`` nm, no two closer than 0.1 nm."""
    generator = torch.Generator().manual_seed(seed)
    frames = []
    while len(frames) < n_frames:
        x = box * torch.rand(n_beads, 3, generator=generator, dtype=torch.float64)
        d = torch.cdist(x, x) + torch.eye(n_beads, dtype=torch.float64)
        if d.min() > 0.1:
            frames.append(x)
    return torch.stack(frames)


def default_hparams() -> dict:
    """The SchNet widths that the default config trains."""
    section = dict(load_config(REPO / "config/config.yaml")["models"]["cgschnet"])
    section.pop("trainer", None)
    return section


@pytest.mark.parametrize("n_beads, box", [(5, 1.2), (40, 2.5)])
@pytest.mark.parametrize("hparams", ["small", "default"])
def test_all_pairs_gives_the_radius_graph_energies_and_forces(n_beads, box, hparams):
    options = SMALL if hparams == "small" else default_hparams()
    torch.manual_seed(0)
    network = trained_like(SchNet(num_types=3, **options), seed=n_beads)
    types = torch.arange(n_beads) % 3
    x = random_frames(6, n_beads, box, seed=n_beads)
    upper = torch.triu_indices(n_beads, n_beads, 1)
    d = torch.cdist(x, x)[:, upper[0], upper[1]]
    assert (d < network.cutoff).any() and (d > network.cutoff).any()  # both kinds of pair
    energies, forces = energy_and_forces(lambda z: network(types, z), x)
    expected_energies, expected_forces = energy_and_forces(
        lambda z: radius_graph_energy(network, types, z), x
    )
    torch.testing.assert_close(energies, expected_energies, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(forces, expected_forces, rtol=1e-10, atol=1e-10)
    # In single precision, as simulations run.
    network = network.float()
    energies, forces = energy_and_forces(lambda z: network(types, z), x.float())
    torch.testing.assert_close(energies.double(), expected_energies, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(forces.double(), expected_forces, rtol=1e-3, atol=1e-3)


def test_verlet_list_gives_the_radius_graph_energies_and_forces():
    torch.manual_seed(0)
    network = trained_like(SchNet(num_types=3, **default_hparams()), seed=1)
    network.neighbours = NeighbourList(network.cutoff, skin=0.1, max_all_pairs=0)
    types = torch.arange(40) % 3
    x = random_frames(4, 40, 3.0, seed=2)
    for step in range(3):  # a first build, then calls that keep or rebuild the tables
        moved = x + 0.04 * step * torch.randn_like(x)
        expected = energy_and_forces(lambda z: radius_graph_energy(network, types, z), moved)
        got = energy_and_forces(lambda z: network(types, z), moved)
        torch.testing.assert_close(got[0], expected[0], rtol=1e-12, atol=1e-10)
        torch.testing.assert_close(got[1], expected[1], rtol=1e-10, atol=1e-10)
    assert network.neighbours._verlet.capacity < 39  # it did leave pairs out


def test_all_pairs_table_holds_every_ordered_pair_once():
    table = all_pairs(3, 7, torch.device("cpu"))
    pairs = table.index.view(3, 7, 6)
    for frame in range(3):
        for bead in range(7):
            others = sorted((pairs[frame, bead] - frame * 7).tolist())
            assert others == [j for j in range(7) if j != bead]
    assert all_pairs(3, 7, torch.device("cpu")) is table  # built once per shape


def pair_counts(neighbours, x: torch.Tensor, cutoff: float) -> tuple[torch.Tensor, torch.Tensor]:
    """[n_frames, n_beads, n_beads]: the pairs i != j within ``cutoff`` by brute force
    (0 or 1), and how often the table holds each (its filled slots within the cutoff)."""
    n_frames, n_beads, _ = x.shape
    d = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    brute = ((d < cutoff) & ~torch.eye(n_beads, dtype=torch.bool)).long()
    _, within = neighbours.distances(x, cutoff)
    slots = neighbours.index.view(n_frames, n_beads, neighbours.n_slots) % n_beads
    held = torch.zeros_like(brute).scatter_add_(-1, slots, within.long())
    return brute, held


def test_verlet_list_finds_every_pair_of_random_configurations():
    neighbours = NeighbourList(0.9, skin=0.15, max_all_pairs=0)
    for seed in range(5):  # unrelated configurations of the same shape: every frame jumps
        x = random_frames(5, 60, 3.0, seed=10 + seed)
        brute, held = pair_counts(neighbours(x), x, 0.9)
        assert brute.sum() > 0
        assert torch.equal(held, brute)  # every pair, once


def test_verlet_list_misses_no_pair_over_a_trajectory_and_rebuilds_only_when_needed():
    generator = torch.Generator().manual_seed(4)
    x = random_frames(3, 50, 4.0, seed=4)
    skin = 0.1
    neighbours = NeighbourList(1.0, skin=skin, max_all_pairs=0, check_every=10)
    neighbours(x)
    assert neighbours._verlet.capacity < 49  # a list, not all pairs
    rebuilds = 0
    for _ in range(400):
        reference = neighbours._verlet.reference.clone()
        x = x + 0.006 * torch.randn(x.shape, generator=generator, dtype=x.dtype)
        brute, held = pair_counts(neighbours(x), x, 1.0)
        assert torch.equal(held, brute)
        moved = (x - reference).norm(dim=-1).amax(dim=1) > skin / 2
        rebuilt = (neighbours._verlet.reference != reference).any(dim=2).any(dim=1)
        assert torch.equal(rebuilt, moved)  # a frame is rebuilt exactly when it must be
        rebuilds += int(rebuilt.sum())
    assert 3 < rebuilds < 3 * 400 / 4  # it rebuilt, and not at every step


def test_verlet_list_overflow_raises():
    x = random_frames(2, 30, 4.0, seed=5)
    with pytest.raises(NeighbourListOverflow, match="larger capacity"):
        NeighbourList(1.0, capacity=1, max_all_pairs=0)(x / 4)  # at the first build
    neighbours = NeighbourList(1.0, skin=0.1, capacity=12, max_all_pairs=0, check_every=5)
    neighbours(x)
    with pytest.raises(NeighbourListOverflow, match="larger capacity"):
        for step in range(1, 30):  # the beads crowd together until some have too many
            neighbours(x * (1 - 0.03 * step))
    assert neighbours.grow() == 24  # twice the slots at the next build
    neighbours(x * (1 - 0.03 * step))  # where it overflowed, now built anew
    neighbours.check()
    assert neighbours._verlet.capacity == 24
    assert neighbours.grow() == 48 and neighbours(x).n_slots == 29  # at most every partner


# Operators whose output shape or value the host must wait for.
HOST_SYNCS = {
    "aten::nonzero",
    "aten::argwhere",
    "aten::_local_scalar_dense",  # .item(), bool(), int(), float() of a tensor
    "aten::is_nonzero",
    "aten::equal",
    "aten::masked_select",
    "aten::_unique",
    "aten::_unique2",
    "aten::unique_dim",
    "aten::unique_consecutive",
    "aten::bincount",
}


class HostSyncs(TorchDispatchMode):
    """Records every operator run (forward and backward) and those that make the host wait
    for the device: ``nonzero`` and friends, ``.item()``, boolean-mask indexing, a
    ``repeat_interleave`` of unknown length."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: set[str] = set()
        self.syncs: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = func._schema.name
        self.ops.add(name)
        if name in HOST_SYNCS:
            self.syncs.append(name)
        if name in {"aten::index", "aten::index_put", "aten::index_put_", "aten::_index_put_impl_"}:
            indices = args[1] if len(args) > 1 else kwargs.get("indices", ())
            if any(i is not None and i.dtype == torch.bool for i in indices):
                self.syncs.append(f"{name} with a boolean mask")
        if (
            name == "aten::repeat_interleave"
            and func._overloadname in {"Tensor", "self_Tensor"}
            and kwargs.get("output_size") is None
        ):
            self.syncs.append(f"{name} of unknown length")
        return func(*args, **kwargs)


def simulation_model() -> EnergyModel:
    """The simulation's model: a prior (every term) and the network at default widths."""
    torch.manual_seed(0)
    prior = fit_prior(_chain(500), BONDS, 300.0, bins=20)
    options = {**default_hparams(), "cutoff": 0.8}
    return MODELS.get("cgschnet")(bead_types=TYPES.tolist(), prior=prior.hparams, **options)


@pytest.fixture(scope="module")
def cgschnet() -> EnergyModel:
    return simulation_model().eval()


def test_host_sync_detector_catches_the_radius_graph(cgschnet):
    x = random_frames(4, 5, 1.2, seed=6).float()
    with HostSyncs() as mode:
        energy_and_forces(lambda z: radius_graph_energy(cgschnet.network, TYPES, z), x)
    assert "aten::nonzero" in mode.syncs


def test_all_pairs_energy_and_forces_never_wait_on_the_host(cgschnet):
    x = random_frames(64, 5, 1.2, seed=7).float()
    with HostSyncs() as mode:
        cgschnet.energy_and_forces(x)
    assert any("index_add" in op for op in mode.ops)  # it saw the backward (index_select's)
    assert mode.syncs == []


def test_verlet_energy_and_forces_wait_on_the_host_only_at_builds_and_checks():
    torch.manual_seed(0)
    network = SchNet(num_types=3, **SMALL)
    network.neighbours = NeighbourList(network.cutoff, max_all_pairs=0, check_every=1000)
    types = torch.arange(30) % 3
    x = random_frames(4, 30, 2.0, seed=8).float()
    with HostSyncs() as mode:
        energy_and_forces(lambda z: network(types, z), x)
    assert mode.syncs  # the first build sizes the capacity
    with HostSyncs() as mode:
        for step in range(5):
            energy_and_forces(lambda z: network(types, z), x + 0.05 * step)
    assert mode.syncs == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_energy_and_forces_never_synchronise_on_a_gpu(cgschnet):
    model = cgschnet.to("cuda")
    x = random_frames(64, 5, 1.2, seed=9).float().cuda()
    model.energy_and_forces(x)  # warm-up: caches, cuBLAS handles
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(3):
            model.energy_and_forces(x)
    finally:
        torch.cuda.set_sync_debug_mode("default")
        model.to("cpu")


def test_checkpoint_gives_the_radius_graph_energies(tmp_path):
    model = simulation_model()
    trained_like(model.network, seed=10)
    path = tmp_path / "model.pt"
    save_model(path, model, Provenance("train"), temperature=300.0)
    loaded = load_model(path).double()
    x = random_frames(3, 5, 1.2, seed=11)
    expected = loaded.prior(x) + radius_graph_energy(loaded.network, loaded.bead_types, x)
    torch.testing.assert_close(loaded(x), expected, rtol=1e-12, atol=1e-10)
