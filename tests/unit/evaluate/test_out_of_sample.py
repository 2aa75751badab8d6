"""Out-of-sample scoring on a two-state toy whose answer is known.

The reference is four trajectories of a two-state Markov chain (an observable = the
state plus Gaussian noise); fold k holds out trajectory k. A *perfect* model samples the
chain itself, independently of the reference; a *replaying* model only replays segments
of its fold's training trajectories. Against the held-out trajectory the replay does not
beat the perfect model (against the pooled reference, three quarters of which it is made
of, it can). A model whose replicas fail in one basin is scored with
their lost frames as escaped mass, and so lands outside its floor, where scoring only the
survivors would hide the failures.
"""

from __future__ import annotations

import numpy as np

from cgpipe.evaluate.comparison import Binned, Reference, compare
from cgpipe.evaluate.statistics import Resampling

N_TRAJ = 4
N_FRAMES = 2000  # per reference trajectory
SWITCH = 0.01  # per frame: tau ~ 1 / (2 SWITCH) = 50 frames
N_REPLICAS = 16
REPLICA_FRAMES = 100
EDGES = [np.linspace(-1.0, 2.0, 13)]


def chain(rng: np.random.Generator, n: int, start: int | None = None) -> np.ndarray:
    """[n] observable of a symmetric two-state chain: state (0 or 1) + noise."""
    flips = rng.random(n) < SWITCH
    first = rng.integers(0, 2) if start is None else start
    states = (first + np.cumsum(flips)) % 2
    return states + 0.25 * rng.normal(size=n)


def by_replica(n_replicas: int, length: int) -> Resampling:
    frames = np.arange(n_replicas * length).reshape(n_replicas, length)
    return Resampling(tuple(frames))


def scores(seed: int) -> dict[str, float]:
    """JS of the perfect and the replaying model, held out and in sample, fold 0."""
    rng = np.random.default_rng(seed)
    trajectories = [chain(rng, N_FRAMES) for _ in range(N_TRAJ)]
    everything = np.concatenate(trajectories)[:, None]
    labels = np.repeat(np.arange(N_TRAJ), N_FRAMES)
    heldout = labels == 0
    training = everything[~heldout]
    reference = Reference(everything[heldout], labels[heldout], training, everything)
    binned = Binned(EDGES, joint=True, pseudo_mass=0.02)
    perfect = np.concatenate([chain(rng, REPLICA_FRAMES) for _ in range(N_REPLICAS)])[:, None]
    starts = rng.integers(0, len(training) - REPLICA_FRAMES, N_REPLICAS)
    replay = np.concatenate([training[s : s + REPLICA_FRAMES] for s in starts])
    plan = by_replica(N_REPLICAS, REPLICA_FRAMES)
    out = {}
    for name, sample in (("perfect", perfect), ("replay", replay)):
        scored = compare(binned, reference, sample, plan, None, rng, 5)[0]
        out[name] = scored.score.value
        out[name + "_insample"] = scored.insample
        out["replay_baseline"] = scored.replay
        out["floor_high"] = scored.floor.high
    return out


def test_replaying_the_training_frames_does_not_beat_an_independent_sampler():
    table = [scores(seed) for seed in range(30)]
    mean = {key: float(np.mean([row[key] for row in table])) for key in table[0]}
    # Held out, replaying segments does not beat a perfect model; nor does the replay
    # baseline the stage reports (the training frames evenly spaced at the CG count).
    assert mean["replay"] >= mean["perfect"]
    assert mean["replay_baseline"] >= mean["perfect"]


def test_replicas_that_fail_in_one_basin_count_as_escaped_mass():
    rng = np.random.default_rng(3)
    trajectories = [chain(rng, N_FRAMES) for _ in range(N_TRAJ)]
    everything = np.concatenate(trajectories)[:, None]
    labels = np.repeat(np.arange(N_TRAJ), N_FRAMES)
    heldout = labels == 0
    reference = Reference(everything[heldout], labels[heldout], everything[~heldout], everything)
    binned = Binned(EDGES, joint=True, pseudo_mass=0.02)
    # A perfect sampler whose replicas die on their first frame in state 1 (x > 0.5).
    n_replicas, length = 64, 200
    saved, lost = [], 0
    survivors = []
    for _ in range(n_replicas):
        x = chain(rng, length, start=0)
        dead = np.flatnonzero(x > 0.5)
        end = dead[0] if len(dead) else length
        saved.append(x[:end])
        lost += length - end
        survivors.append(end)
    values = np.concatenate(saved)[:, None]
    replica = np.repeat(np.arange(n_replicas), survivors)
    frames = tuple(np.flatnonzero(replica == r) for r in range(n_replicas))
    survivors_only = compare(binned, reference, values, Resampling(frames), None, rng, 50)[0]
    with_escaped = np.concatenate([values, np.full((lost, 1), np.nan)])
    escaped_labels = np.concatenate(
        [replica, np.repeat(np.arange(n_replicas), length - np.array(survivors))]
    )
    frames = tuple(np.flatnonzero(escaped_labels == r) for r in range(n_replicas))
    counted = compare(binned, reference, with_escaped, Resampling(frames), None, rng, 50)[0]
    assert lost > 0.3 * n_replicas * length
    # The lost frames weigh: the score rises well above what the survivors alone give,
    # and above the floor at the full frame count.
    assert counted.score.value > survivors_only.score.value + 0.05
    assert counted.score.low > counted.floor.high
    # The escaped bin is the last one of every histogram.
    counts = binned.counts(with_escaped)[0]
    assert counts[-1] == lost and counts.sum() == len(with_escaped)
