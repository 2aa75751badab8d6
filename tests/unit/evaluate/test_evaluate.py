import numpy as np
import pytest

from cgpipe.evaluate import phi_psi
from cgpipe.evaluate.fes import free_energy
from cgpipe.io import read_trajectory


def test_phi_psi_of_the_reference(ala2_reference):
    data = read_trajectory(ala2_reference[0])
    angles = phi_psi(data)
    assert angles.shape == (data.n_frames, 2)
    assert (np.abs(angles) <= np.pi).all()
    # Alanine dipeptide at 300 K lives at negative phi (beta/PII and alpha_R basins).
    assert (angles[:, 0] < 0).mean() > 0.9


def test_free_energy_leaves_unvisited_bins_blank():
    energy = free_energy(np.array([[0.5, 0.0], [0.25, 0.25]]), kT=2.5)
    assert np.isnan(energy[0, 1])
    assert energy[0, 0] == 0.0 and energy[1, 0] == pytest.approx(2.5 * np.log(2))
