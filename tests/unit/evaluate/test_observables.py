"""Observables of maps with few beads: a two-bead map (one distance) still projects on two
TICA components, the second zero, so every 2-D comparison runs on it."""

import mdtraj as md
import numpy as np

from cgpipe.io import TrajectoryData
from cgpipe.observables import fit_tica, tica_projection


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
