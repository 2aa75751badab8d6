"""Force matching on noisy forces learns the mean force, not the noise."""

import mdtraj as md
import numpy as np
import pandas as pd

from cgpipe.config import load_config
from cgpipe.io import Provenance, TrajectoryData, read_table, write_trajectory
from cgpipe.mapping import Mapping, write_mapping
from cgpipe.models import load_model
from cgpipe.train import train_fold
from cgpipe.train.force_matching import force_rmse


def test_force_matching_recovers_a_known_mean_force(tmp_path):
    # Three beads in a harmonic chain (k = 2000 kJ/mol/nm^2, r0 = 0.3 nm) sampled by
    # Langevin dynamics with no noise in positions but with large zero-mean noise on the
    # forces, as instantaneous atomistic forces have. The learned forces must approach
    # the true mean force far more closely than the noise.
    import torch

    from cgpipe.simulate import BAOAB

    k, r0 = 2000.0, 0.3
    bonds = torch.tensor([[0, 1], [1, 2]])

    def true_forces(x):
        x = x.detach().requires_grad_(True)
        r = torch.linalg.vector_norm(x[:, bonds[:, 1]] - x[:, bonds[:, 0]], dim=-1)
        energy = (0.5 * k * (r - r0) ** 2).sum()
        return -torch.autograd.grad(energy, x)[0]

    generator = torch.Generator().manual_seed(0)
    integrator = BAOAB(true_forces, torch.full((3,), 12.0), 300.0, 0.002, 10.0, generator)
    x = torch.tensor([[[0.0, 0, 0], [0.3, 0, 0], [0.3, 0.3, 0]]]).repeat(64, 1, 1)
    v, f = integrator.initial_velocities(x), true_forces(x)
    frames, forces = [], []
    for step in range(4000):
        x, v, f = integrator.step(x, v, f)
        if step >= 500 and step % 25 == 0:
            frames.append(x.clone())
            forces.append(f.clone())
    positions = torch.cat(frames).numpy()
    mean_forces = torch.cat(forces).numpy()
    noise = 60.0
    rng = np.random.default_rng(1)
    noisy = mean_forces + rng.normal(scale=noise, size=mean_forces.shape)

    topology = md.Topology()
    residue = topology.add_residue("TOY", topology.add_chain())
    atoms = [topology.add_atom(f"B{i}", md.element.carbon, residue) for i in range(3)]
    topology.add_bond(atoms[0], atoms[1])
    topology.add_bond(atoms[1], atoms[2])
    table = pd.DataFrame(
        {
            "bead": [0, 1, 2],
            "atom": [0, 1, 2],
            "weight": 1.0,
            "force_weight": 1.0,
            "bead_name": ["B0", "B1", "B2"],
            "bead_type": 0,
            "mass": 12.0,
            "residue_index": 0,
            "residue_name": "TOY",
            "residue_seq": 1,
        }
    )
    write_mapping(
        tmp_path / "map.parquet", Mapping("toy", 3, table, topology), Provenance("mapping")
    )
    n = len(positions)
    write_trajectory(
        tmp_path / "cg.h5",
        TrajectoryData(
            topology, positions, np.arange(n), forces=noisy, trajectory_index=np.arange(n) * 2 // n
        ),
        Provenance("forces"),
    )
    params = load_config(
        {
            "train": {
                "n_folds": 2,
                "epochs": 8,
                "batch_size": 64,
                "learning_rate": 0.003,
                "cgschnet": {
                    "hidden_channels": 16,
                    "num_filters": 16,
                    "num_interactions": 1,
                    "num_gaussians": 16,
                },
            }
        }
    )["train"]
    train_fold(
        tmp_path / "cg.h5",
        tmp_path / "map.parquet",
        tmp_path,
        model_name="cgschnet",
        fold=0,
        temperature=300.0,
        params=params,
        seed=0,
    )
    model = load_model(tmp_path / "model.pt")
    held = torch.as_tensor(positions[: n // 2])
    error = force_rmse(model, held, torch.as_tensor(mean_forces[: n // 2]))
    assert error < 0.3 * noise
    # The held-out loss against the noisy forces cannot beat the noise itself.
    losses = read_table(tmp_path / "losses.parquet")
    assert losses[losses.split == "heldout"].rmse.iloc[-1] > 0.9 * noise
