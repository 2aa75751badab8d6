"""Time SchNetPack's force-matching training step; run by training_throughput.py in an
environment of SchNetPack's own (never the project's), it imports nothing of cgpipe.

Reads an .npz of CG frames (``positions`` [n_frames, n_beads, 3], ``forces`` alike,
``types`` [n_beads]) and prints one JSON line: the seconds of each timed step.

The model is SchNetPack's own potential: ``PairwiseDistances`` -> ``SchNet`` (the given
features, interactions, Gaussian RBFs and cosine cutoff) -> ``Atomwise`` energy ->
``Forces`` (-dE/dR by autograd, with the graph kept in training), over every bead pair of
each frame (cgpipe's network sees the same pairs). The step is what cgpipe's force
matching does: forward, the mean squared force error, backward through the forces
(double backward) and an AdamW step.

SchNetPack 2.1.1 imports ``T_co`` from ``torch.utils.data.dataloader``, which torch 2.13
no longer defines; it is defined before the import (a type variable, used only in type
hints of its data loader, which is not used here).
"""

from __future__ import annotations

import argparse
import json
import time
import typing
from importlib.metadata import version

import numpy as np
import torch
import torch.utils.data.dataloader as dataloader

if not hasattr(dataloader, "T_co"):
    dataloader.T_co = typing.TypeVar("T_co", covariant=True)

import schnetpack as spk  # noqa: E402
from schnetpack import properties  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("frames")
    parser.add_argument("--batch", type=int, required=True)
    parser.add_argument("--features", type=int, required=True)
    parser.add_argument("--filters", type=int, required=True)
    parser.add_argument("--interactions", type=int, required=True)
    parser.add_argument("--gaussians", type=int, required=True)
    parser.add_argument("--cutoff", type=float, required=True)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    data = np.load(args.frames)
    positions = torch.as_tensor(data["positions"], dtype=torch.float32)
    forces = torch.as_tensor(data["forces"], dtype=torch.float32)
    types = torch.as_tensor(data["types"], dtype=torch.long)
    n_frames, n_beads, _ = positions.shape

    model = spk.model.NeuralNetworkPotential(
        representation=spk.representation.SchNet(
            n_atom_basis=args.features,
            n_interactions=args.interactions,
            radial_basis=spk.nn.GaussianRBF(n_rbf=args.gaussians, cutoff=args.cutoff),
            cutoff_fn=spk.nn.CosineCutoff(args.cutoff),
            n_filters=args.filters,
        ),
        input_modules=[spk.atomistic.PairwiseDistances()],
        output_modules=[
            spk.atomistic.Atomwise(n_in=args.features, output_key="energy"),
            spk.atomistic.Forces(energy_key="energy", force_key="forces"),
        ],
    )
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    # Every ordered bead pair of each frame of a batch, and the frame of every bead.
    i, j = torch.meshgrid(torch.arange(n_beads), torch.arange(n_beads), indexing="ij")
    off = i != j
    offsets = (torch.arange(args.batch) * n_beads).view(-1, 1)
    idx_i = (i[off].view(1, -1) + offsets).reshape(-1)
    idx_j = (j[off].view(1, -1) + offsets).reshape(-1)
    idx_m = torch.arange(args.batch).repeat_interleave(n_beads)
    z = (types + 1).repeat(args.batch)

    generator = torch.Generator().manual_seed(1)
    seconds = []
    for step in range(args.warmup + args.steps):
        batch = torch.randint(n_frames, (args.batch,), generator=generator)
        start = time.perf_counter()
        inputs = {
            properties.Z: z,
            properties.R: positions[batch].reshape(-1, 3).clone(),
            properties.idx_i: idx_i,
            properties.idx_j: idx_j,
            properties.idx_m: idx_m,
            properties.offsets: torch.zeros(len(idx_i), 3),
            properties.n_atoms: torch.full((args.batch,), n_beads),
        }
        predicted = model(inputs)["forces"]
        loss = ((predicted - forces[batch].reshape(-1, 3)) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step >= args.warmup:
            seconds.append(time.perf_counter() - start)
    print(json.dumps({"seconds": seconds, "schnetpack": version("schnetpack")}))


if __name__ == "__main__":
    main()
