"""The Simulation: health from reference statistics, failed replicas leave the batch
without touching the others, blocks stream to disk, and a killed run resumes to the same
trajectory bit for bit."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from cgpipe import keys, paths
from cgpipe.io import read_provenance, read_table, read_trajectory
from cgpipe.io.blocks import Blocks
from cgpipe.models.neighbours import NeighbourList
from cgpipe.simulate import Health, Simulation
from cgpipe.simulate.baoab import BAOAB
from cgpipe.simulate.graphs import build_save, unavailable
from cgpipe.simulate.health import REASONS
from tests.unit.simulate.conftest import FOLD, simulate_fold

BOND = 0.38  # nm
K_BOND = 2000.0  # kJ/mol/nm^2
KT = 2.494  # kJ/mol


def chain_energy(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Harmonic bonds of rest length BOND along a 4-bead chain and harmonic 1-3 distances
    (rest 1.8 BOND), replica by replica."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        bonds = torch.linalg.vector_norm(x[:, 1:] - x[:, :-1], dim=-1)
        ends = torch.linalg.vector_norm(x[:, 2:] - x[:, :-2], dim=-1)
        energy = 0.5 * K_BOND * ((bonds - BOND) ** 2).sum(-1)
        energy = energy + 0.5 * K_BOND * ((ends - 1.8 * BOND) ** 2).sum(-1)
        (gradient,) = torch.autograd.grad(energy.sum(), x)
    return energy.detach(), -gradient


def chain_frames(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 4, 3] chains with Boltzmann-like bond lengths and random bends."""
    frames = np.zeros((n, 4, 3))
    for bead in range(1, 4):
        direction = 0.2 * rng.normal(size=(n, 3)) + np.array([1.0, 0, 0])
        direction /= np.linalg.norm(direction, axis=1, keepdims=True)
        length = BOND + np.sqrt(KT / K_BOND) * rng.normal(size=(n, 1))
        frames[:, bead] = frames[:, bead - 1] + length * direction
    return frames


BONDS = np.array([[0, 1], [1, 2], [2, 3]])


def chain_simulation(starts: np.ndarray, *, window: int = 0, seed: int = 0) -> Simulation:
    reference = chain_frames(np.random.default_rng(1), 4000)
    health = Health.from_reference(
        reference, BONDS, min_distance=0.1, max_bond_stretch=1.5, window=window
    )
    integrator = BAOAB(
        chain_energy,
        torch.full((4,), 12.0, dtype=torch.float64),
        0.002,
        torch.Generator().manual_seed(seed),
        friction=1.0,
    )
    x = torch.as_tensor(starts, dtype=torch.float64)
    state = integrator.start(x, torch.full((len(x),), KT, dtype=torch.float64))
    return Simulation(integrator, state, health, save_every=10, checkpoint_interval=100)


def test_health_flags_nan_collision_and_bond_stretch():
    straight = np.zeros((1, 3, 3))
    straight[0, :, 0] = [0.0, 0.15, 0.3]
    health = Health.from_reference(
        straight + 0.001 * np.random.default_rng(0).normal(size=(50, 3, 3)),
        np.array([[0, 1], [1, 2]]),
        min_distance=0.1,
        max_bond_stretch=2.0,
        window=0,
    )
    x = torch.tensor(
        [
            [[0.0, 0, 0], [0.15, 0, 0], [0.3, 0, 0]],  # healthy
            [[0.0, 0, 0], [float("nan"), 0, 0], [0.3, 0, 0]],  # NaN
            [[0.0, 0, 0], [0.15, 0, 0], [0.2, 0, 0]],  # beads 1 and 2 collide (0.05 nm)
            [[0.0, 0, 0], [0.15, 0, 0], [0.6, 0, 0]],  # bond 1-2 stretched to 0.45 nm
        ]
    )
    codes, _ = health.check(x, health.counters(4, "cpu"))
    assert [REASONS[c] for c in codes.tolist()] == ["", "nan", "collision", "bond_stretch"]


def test_a_bond_outside_the_reference_range_fails_only_after_the_window():
    rng = np.random.default_rng(2)
    reference = chain_frames(rng, 4000)
    health = Health.from_reference(
        reference, BONDS, min_distance=0.1, max_bond_stretch=1.5, window=3
    )
    high = float(health.bond_range[1, 1])
    frame = torch.as_tensor(reference[:1], dtype=torch.float32)
    out = frame.clone()
    out[0, 2:] += torch.tensor([high - BOND + 0.02, 0, 0])  # bond 1-2 just above its range
    counters = health.counters(1, "cpu")
    codes = []
    for x in (out, out, frame, out, out, out):  # leaves the range, comes back, stays out
        code, counters = health.check(x, counters)
        codes.append(REASONS[int(code)])
    assert codes == ["", "", "", "", "", "bonded_range"]
    # The limits come from the reference, not from any model.
    lengths = np.linalg.norm(reference[:, 1:] - reference[:, :-1], axis=-1)
    np.testing.assert_allclose(
        health.bond_range.numpy(), np.quantile(lengths, [0.001, 0.999], axis=0).T, rtol=1e-5
    )
    np.testing.assert_allclose(
        health.max_bond_length.numpy(), 1.5 * lengths.mean(axis=0), rtol=1e-5
    )


def test_a_replica_that_blows_up_stops_alone_and_the_others_are_unchanged(tmp_path):
    starts = chain_frames(np.random.default_rng(3), 6)
    broken = starts.copy()
    broken[2, 3] += [2.0, 0, 0]  # bond 2-3 at 5x its length: replica 2 fails at once
    outcomes, trajectories = [], []
    for name, first in (("clean", starts), ("broken", broken)):
        simulation = chain_simulation(first)
        blocks = Blocks(tmp_path / name, "test")
        outcomes.append(simulation.run(1000, blocks))
        trajectories.append(dict(simulation.frames_by_replica(blocks)))
        # The failed replica left the batch at the end of its block.
        assert len(simulation.state.replicas) == 6 - (name == "broken")
    clean, broken_run = outcomes
    assert clean.stable.all()
    assert broken_run.stable.tolist() == [True, True, False, True, True, True]
    assert broken_run.reasons[2] == "bond_stretch" and broken_run.failed_save[2] == 0
    assert broken_run.n_frames.tolist() == [100, 100, 0, 100, 100, 100]
    for replica in (0, 1, 3, 4, 5):
        np.testing.assert_array_equal(trajectories[0][replica], trajectories[1][replica])


def _stage_config(test_config) -> dict:
    cfg = copy.deepcopy(test_config)
    cfg["simulate"].update(n_replicas=4, n_steps=6000, save_every=20, checkpoint_interval=300)
    return cfg


_SIMULATE = """
import json, sys
from cgpipe.simulate import run
args = json.loads(sys.argv[1])
run(args["model"], args["cg"], args["mapping"], args["out"], fold=args["fold"], cfg=args["cfg"],
    seed=3)
"""


def test_a_killed_run_resumes_and_equals_an_uninterrupted_one(tmp_path, fold_inputs, test_config):
    cfg = _stage_config(test_config)
    whole, cut = tmp_path / "whole", tmp_path / "cut"
    simulate_fold(fold_inputs, whole, cfg)
    assert not (whole / (paths.TRAJECTORY_FILE + ".checkpoint")).exists()
    arguments = {
        "model": str(fold_inputs["model"]),
        "cg": str(fold_inputs["cg"]),
        "mapping": str(fold_inputs["mapping"]),
        "out": str(cut),
        "fold": FOLD,
        "cfg": cfg,
    }
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.getcwd(), *sys.path])}
    process = subprocess.Popen(
        [sys.executable, "-c", _SIMULATE, json.dumps(arguments)],
        stderr=subprocess.DEVNULL,
        cwd=os.getcwd(),
        env=env,
    )
    folder = cut / (paths.TRAJECTORY_FILE + ".checkpoint")
    block = folder / "block_000003.kept.npy"
    deadline = time.monotonic() + 120
    while not block.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert block.exists() and not (cut / paths.TRAJECTORY_FILE).exists(), "not cut mid-way"
    simulate_fold(fold_inputs, cut, cfg)
    a, b = (read_trajectory(folder_ / paths.TRAJECTORY_FILE) for folder_ in (whole, cut))
    np.testing.assert_array_equal(a.coordinates, b.coordinates)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(a.trajectory_index, b.trajectory_index)
    health_a, health_b = (read_table(f / paths.HEALTH_FILE) for f in (whole, cut))
    assert health_a.equals(health_b)
    assert read_provenance(cut / paths.TRAJECTORY_FILE)["extra"]["restarts"] == 1
    assert not folder.exists()


def test_a_checkpoint_of_other_settings_is_not_resumed(tmp_path, fold_inputs, test_config):
    cfg = _stage_config(test_config)
    folder = tmp_path / (paths.TRAJECTORY_FILE + ".checkpoint")
    Blocks(folder, "other settings").reset()
    Blocks(folder, "other settings").save_state(b"junk", n_blocks=5, seconds=1.0, restarts=0)
    simulate_fold(fold_inputs, tmp_path, cfg)
    assert read_provenance(tmp_path / paths.TRAJECTORY_FILE)["extra"]["restarts"] == 0
    health = read_table(tmp_path / paths.HEALTH_FILE)
    assert len(health) == 4 and keys.STABLE in health


@pytest.mark.parametrize("blocks_of", [1, 7])
def test_frames_stream_in_blocks_of_any_size(tmp_path, blocks_of):
    simulation = chain_simulation(chain_frames(np.random.default_rng(5), 3))
    simulation.saves_per_block = blocks_of
    blocks = Blocks(tmp_path, "test")
    outcome = simulation.run(300, blocks)
    frames = dict(simulation.frames_by_replica(blocks))
    assert outcome.n_frames.tolist() == [30, 30, 30]
    assert all(f.shape == (30, 4, 3) for f in frames.values())
    assert simulation.n_blocks == -(-30 // blocks_of)


def test_the_graph_code_path_run_eagerly_equals_plain_stepping(tmp_path):
    """The CUDA-graph path (state copied into fixed buffers, one save run on them, read
    back) gives the same trajectory as plain stepping, bit for bit; on CPU nothing is
    captured."""
    starts = chain_frames(np.random.default_rng(6), 5)
    runs = []
    for static in (False, True):
        simulation = chain_simulation(starts)
        simulation.static_buffers = static
        frames, kept = simulation.advance(40)
        runs.append((frames, kept, simulation.state.velocities))
    for plain, static in zip(runs[0], runs[1], strict=True):
        assert torch.equal(plain, static)
    simulation = chain_simulation(starts)
    unit = build_save(
        simulation.save, simulation.state, simulation.outside, simulation.integrator, enabled=True
    )
    assert unit == simulation.save
    assert unavailable(simulation.integrator, torch.device("cpu")) == "the device is cpu, not CUDA"


CLUSTER = 16  # beads


def cluster_energy(neighbours: NeighbourList):
    """Beads in a harmonic well (100 kJ/mol/nm^2 about the origin), repelling each other
    within neighbours.cutoff as 50 (1 - d/cutoff)^2 kJ/mol over the neighbour table."""

    def energy_and_forces(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            distances, within = neighbours(x).distances(x, neighbours.cutoff)
            overlap = torch.where(within, 1 - distances / neighbours.cutoff, 0.0)
            energy = 50.0 * overlap.square().sum(dim=(1, 2)) / 2 + 50.0 * x.square().sum(dim=(1, 2))
            (gradient,) = torch.autograd.grad(energy.sum(), x)
        return energy.detach(), -gradient

    return energy_and_forces


def cluster_simulation(neighbours: NeighbourList) -> Simulation:
    """Replicas of beads strung out 0.5 nm apart along x, which the well pulls together
    into a ball where every bead is within the cutoff of every other."""
    line = torch.zeros(CLUSTER, 3, dtype=torch.float64)
    line[:, 0] = 0.5 * (torch.arange(CLUSTER) - (CLUSTER - 1) / 2)
    x = line.expand(3, CLUSTER, 3) + 0.01 * torch.randn(3, CLUSTER, 3, dtype=torch.float64)
    chain = np.stack([np.arange(CLUSTER - 1), np.arange(1, CLUSTER)], axis=1)
    reference = np.stack([line.numpy()] * 4)
    health = Health.from_reference(
        reference, chain, min_distance=0.001, max_bond_stretch=100.0, window=0
    )
    integrator = BAOAB(
        cluster_energy(neighbours),
        torch.full((CLUSTER,), 12.0, dtype=torch.float64),
        0.002,
        torch.Generator().manual_seed(4),
        friction=5.0,
    )
    state = integrator.start(x, torch.full((3,), KT, dtype=torch.float64))
    return Simulation(
        integrator,
        state,
        health,
        save_every=10,
        checkpoint_interval=500,
        neighbour_lists=[neighbours],
    )


def test_a_block_whose_verlet_list_overflowed_runs_again_with_the_list_grown(tmp_path, caplog):
    """The strung-out start sizes the Verlet list for 2 neighbours; the well then packs
    every bead within the cutoff of every other. The overflowing block runs again from
    its start with more slots, and the trajectory equals one with every pair listed from
    the first step."""
    torch.manual_seed(0)
    grown = NeighbourList(0.8, skin=0.1, max_all_pairs=0)
    simulation = cluster_simulation(grown)
    capacity = grown._verlet.capacity
    assert capacity < CLUSTER - 1  # sized for the strung-out start
    with caplog.at_level("WARNING", logger="cgpipe.simulate.simulation"):
        simulation.run(1000, Blocks(tmp_path / "grown", "test"))
    assert "run again with at least" in caplog.text
    assert grown._verlet.capacity == CLUSTER - 1
    torch.manual_seed(0)
    full = NeighbourList(0.8, skin=0.1, capacity=CLUSTER - 1, max_all_pairs=0)
    reference = cluster_simulation(full)
    reference.run(1000, Blocks(tmp_path / "full", "test"))
    got = dict(simulation.frames_by_replica(Blocks(tmp_path / "grown", "test")))
    expected = dict(reference.frames_by_replica(Blocks(tmp_path / "full", "test")))
    frames = torch.as_tensor(np.concatenate(list(expected.values())))
    within = (torch.cdist(frames, frames) < 0.8).sum(-1) - 1
    assert int(within.max()) > capacity  # the start's list would have dropped pairs
    for replica in range(3):
        np.testing.assert_allclose(got[replica], expected[replica], rtol=0, atol=1e-9)
