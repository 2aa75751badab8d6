"""Force matching on noisy forces learns the mean force, not the noise."""

import numpy as np
import torch

from cgpipe.config import load_config
from cgpipe.io import read_provenance, read_table
from cgpipe.models import force_rmse, load_model
from cgpipe.paths import LOSSES_FILE, MODEL_FILE
from cgpipe.train import run
from cgpipe.units import thermal_energy
from tests.unit.train.toy import write_cg


def test_force_matching_recovers_a_known_mean_force(tmp_path):
    # Three beads in a harmonic chain (k = 2000 kJ/mol/nm^2, r0 = 0.3 nm) sampled by
    # overdamped Langevin dynamics, with no noise in positions but with large zero-mean
    # noise on the forces, as instantaneous atomistic forces have. The learned forces
    # must approach the true mean force far more closely than the noise.
    k, r0 = 2000.0, 0.3
    bonds = torch.tensor([[0, 1], [1, 2]])

    def true_forces(x):
        x = x.detach().requires_grad_(True)
        r = torch.linalg.vector_norm(x[:, bonds[:, 1]] - x[:, bonds[:, 0]], dim=-1)
        energy = (0.5 * k * (r - r0) ** 2).sum()
        return -torch.autograd.grad(energy, x)[0]

    generator = torch.Generator().manual_seed(0)
    kT = thermal_energy(300.0)
    mobility_dt = 5e-5  # nm^2 mol/kJ: D dt / kT, a tenth of the bonds' relaxation
    x = torch.tensor([[[0.0, 0, 0], [0.3, 0, 0], [0.3, 0.3, 0]]]).repeat(64, 1, 1)
    frames, forces = [], []
    for step in range(4000):
        f = true_forces(x)
        if step >= 500 and step % 25 == 0:
            frames.append(x.clone())
            forces.append(f.clone())
        kick = torch.randn(x.shape, generator=generator) * (2 * mobility_dt * kT) ** 0.5
        x = x + mobility_dt * f + kick
    positions = torch.cat(frames).numpy()
    mean_forces = torch.cat(forces).numpy()
    noise = 60.0
    rng = np.random.default_rng(1)
    noisy = mean_forces + rng.normal(scale=noise, size=mean_forces.shape)

    n = len(positions)
    cg_path, mapping_path = write_cg(tmp_path, positions, noisy, np.arange(n) * 2 // n, [0, 0, 0])
    cfg = load_config(
        {
            # The toy's angle is free (no 1-3 physics: beads 0 and 2 come within 0.02 nm),
            # so a 20-kT angle wall fitted between its 0.1 % and 1 % quantiles puts forces
            # of ~2000 kJ/mol/nm on 1 % of the frames that its mean force does not have
            # (held-out error 21 against 5.4 with a 1-kT wall): this test is about the
            # noise, not about the wall.
            "train": {"n_folds": 2, "prior": {"angle_wall_height": 1.0}},
            "models": {
                "cgschnet": {
                    "hidden_channels": 16,
                    "num_filters": 16,
                    "num_interactions": 1,
                    "num_gaussians": 16,
                }
            },
            "trainers": {"force_matching": {"epochs": 8, "batch_size": 64, "learning_rate": 0.003}},
        }
    )
    run(cg_path, mapping_path, tmp_path, model="cgschnet", fold=0, cfg=cfg, seed=0)
    model = load_model(tmp_path / MODEL_FILE)
    held, truth = torch.as_tensor(positions[: n // 2]), torch.as_tensor(mean_forces[: n // 2])
    error = force_rmse(model, held, truth)
    assert error < 0.3 * noise
    # ... and the network learned what the prior, fitted to positions alone, missed.
    assert error < 0.7 * force_rmse(model.prior_model(), held, truth)
    # The held-out loss against the noisy forces cannot beat the noise itself.
    losses = read_table(tmp_path / LOSSES_FILE)
    assert losses[losses.split == "heldout"].rmse.iloc[-1] > 0.9 * noise
    # One training trajectory: its last fifth in time validated, the rest trained on.
    extra = read_provenance(tmp_path / MODEL_FILE)["extra"]
    assert extra["validation_trajectories"] == [1] and "last 20 %" in extra["validation"]
    assert extra["validation_frames"] == round(0.2 * (n - n // 2))
