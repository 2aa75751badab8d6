"""Observables of maps with few beads: a two-bead map (one distance) still projects on two
TICA components, the second zero, so every 2-D comparison runs on it."""

import mdtraj as md
import numpy as np
import pytest

from cgpipe.io import TrajectoryData
from cgpipe.observables import fit_tica, tica_decomposition, tica_projection


def _two_beads(n_frames: int = 400) -> TrajectoryData:
    topology = md.Topology()
    residue = topology.add_residue("CG", topology.add_chain())
    a = topology.add_atom("B0", md.element.carbon, residue)
    b = topology.add_atom("B1", md.element.carbon, residue)
    topology.add_bond(a, b)
    rng = np.random.default_rng(0)
    # A two-state distance: 0.4 or 0.6 nm, switching now and then, plus noise.
    state = np.cumsum(rng.random(n_frames) < 0.02) % 2
    distance = 0.4 + 0.2 * state + rng.normal(scale=0.02, size=n_frames)
    coordinates = np.zeros((n_frames, 2, 3), dtype=np.float32)
    coordinates[:, 1, 0] = distance
    return TrajectoryData(
        topology=topology,
        coordinates=coordinates,
        time=np.arange(n_frames) * 0.1,
        trajectory_index=np.repeat([0, 1], n_frames // 2),
    )


def test_a_two_bead_map_has_two_tica_components_the_second_zero():
    data = _two_beads()
    tica = fit_tica(data, lag_ps=0.5)
    components = tica.transform(data)
    assert components.shape == (data.n_frames, 2)
    assert np.all(components[:, 1] == 0)
    # The one real component follows the distance (up to sign).
    distance = data.coordinates[:, 1, 0]
    assert abs(np.corrcoef(components[:, 0], distance)[0, 1]) > 0.99
    projection = tica_projection(tica, data)
    assert len(projection.ranges) == 2 and projection.compute(data).shape == (data.n_frames, 2)


def test_tica_equals_deeptimes_on_a_slow_process_hidden_in_noise():
    """Our TICA against deeptime's (kinetic map, lag in frames, several trajectories):
    the same autocorrelations and the same components, signs included."""
    deeptime = pytest.importorskip("deeptime.decomposition")
    rng = np.random.default_rng(1)
    series = []
    for length in (700, 500, 900):
        slow = np.cumsum(rng.random(length) < 0.03) % 2 + rng.normal(scale=0.1, size=length)
        fast = rng.normal(size=(length, 3))
        mixing = np.array([[1.0, 0.3, -0.2, 0.5], [0.2, 1.0, 0.1, 0.0], [0.0, 0.4, 1.0, 0.2]])
        features = np.concatenate([slow[:, None], fast], axis=1) @ np.vstack(
            [np.array([[0.7, -0.4, 0.2, 0.1]]), mixing]
        )
        series.append(features)
    lag = 5
    mean, vectors, eigenvalues = tica_decomposition(series, lag)
    theirs = deeptime.TICA(lagtime=lag).fit(series).fetch_model()
    np.testing.assert_allclose(eigenvalues, theirs.singular_values, rtol=1e-8, atol=1e-10)
    assert eigenvalues[0] > 0.5 > abs(eigenvalues[1])  # the slow process leads
    frames = np.concatenate(series)
    np.testing.assert_allclose(
        (frames - mean) @ vectors, theirs.transform(frames), rtol=1e-7, atol=1e-9
    )
