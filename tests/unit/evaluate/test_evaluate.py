import numpy as np
import pytest

from cgpipe.evaluate import histogram_2d, js_divergence, kl_divergence, phi_psi
from cgpipe.evaluate.divergence import free_energy
from cgpipe.io import read_trajectory


def test_divergences_of_known_distributions():
    p = np.array([0.5, 0.5])
    q = np.array([0.9, 0.1])
    assert kl_divergence(p, q) == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1))
    assert js_divergence(p, p) == 0.0
    assert js_divergence(p, q) == pytest.approx(js_divergence(q, p))
    disjoint = js_divergence(np.array([1.0, 0.0]), np.array([0.0, 1.0]))
    assert disjoint == pytest.approx(np.log(2))


def test_histogram_uses_the_stated_binning_and_pseudo_count():
    samples = np.array([[-3.0, -3.0], [0.1, 0.1]])
    histogram = histogram_2d(samples, bins=4, pseudo_count=1.0)
    assert histogram.shape == (4, 4)
    assert histogram.sum() == pytest.approx(1.0)
    assert histogram[0, 0] == pytest.approx(2 / 18) and histogram[1, 0] == pytest.approx(1 / 18)
    energy = free_energy(histogram, 2.5)
    assert energy.min() == 0.0


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
