"""Prior-only stability of coarse maps of alanine dipeptide, and how close their angles'
end beads come.

Alanine dipeptide in GBn2 at 300 K (openmmtools' structure, amber14, 2 fs, HBonds):
``--trajectories`` reference trajectories of ``--ps`` ps each, every 20 fs saved. On three
maps — one bead per residue (``config/maps/ala2_residues.tsv``, 3 beads), k-means of 3
beads (fitted to the reference) and ``backbone_cb`` (6 beads) — the prior is fitted with
``train.prior``'s defaults to every reference frame, then simulated alone: 64 replicas
started from reference frames, ``--cg-ps`` ps of BAOAB (2 fs, friction 1/ps), health
checked every 0.1 ps as the simulate stage does (a bead pair closer than 0.1 nm or a bond
longer than 1.5 x its prior length ends a replica). Per map it prints the stable fraction
and, over every checked frame of every replica, the smallest distance between an angle's
end beads (1-3 pairs) and the number of frames below the reference's 0.1 % quantile of
that pair's distance (the angle wall's contact distance).

``--without-wall`` adds each map's prior with a zero-height angle wall (the prior before
the wall). Run: ``python benchmarks/prior_stability.py`` (about 5 minutes on 2 cores, twice
that with ``--without-wall``; the reference is cached in ``--cache``); the table goes to
``benchmarks/prior_stability.tsv`` and stdout. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cgpipe.bonded import angle_end_pairs
from cgpipe.config import load_config
from cgpipe.io import TrajectoryData, read_trajectory
from cgpipe.mapping import MAPPINGS, Mapping, mapping_method
from cgpipe.mapping.kmeans import KMeansMap
from cgpipe.models import MODELS, fit_prior, pair_distances
from cgpipe.reference import generate_trajectory, resolve_structure
from cgpipe.simulate import Health, Simulation
from cgpipe.simulate.baoab import BAOAB
from cgpipe.units import thermal_energy

ALA2 = "openmmtools:data/alanine-dipeptide-gbsa/alanine-dipeptide.pdb"
REPO = Path(__file__).resolve().parent.parent
TEMPERATURE = 300.0  # K
CONTACT_QUANTILE = 0.001


def reference(cache: Path, n_trajectories: int, ps: float) -> TrajectoryData:
    """The all-atom reference, generated once into ``cache``."""
    params = load_config(None)["reference"]
    params.update(
        equilibration_steps=10_000, start_steps=5_000, n_steps=int(ps / 0.002), save_every=10
    )
    paths = []
    for index in range(n_trajectories):
        path = cache / f"ala2_{index}_{ps:g}ps.h5"
        if not path.exists():
            generate_trajectory(
                ALA2,
                path,
                system="ala2",
                index=index,
                temperature=TEMPERATURE,
                params=params,
                master_seed=7,
            )
        paths.append(path)
    return TrajectoryData.concatenate([read_trajectory(p) for p in paths])


def maps(data: TrajectoryData) -> dict[str, Mapping]:
    topology = data.topology
    residues = {"files": {"residues": str(REPO / "config/maps/ala2_residues.tsv")}}
    return {
        "residues": mapping_method("residues", residues).build(topology, None),
        "kmeans_3": KMeansMap(n_beads=3, max_frames=2000).build(topology, data, seed=0),
        "backbone_cb": MAPPINGS.get("backbone_cb")().build(topology, None),
    }


def simulate_prior(
    mapping: Mapping,
    cg: np.ndarray,
    n_replicas: int,
    n_steps: int,
    seed: int = 0,
    wall: bool = True,
) -> dict[str, float]:
    """Fit the prior to ``cg`` [n_frames, n_beads, 3] (nm), simulate it alone, score it;
    ``wall=False`` fits the angle wall with zero height (the prior before it had one)."""
    prior_options = load_config(None)["train"]["prior"]
    if not wall:
        prior_options["angle_wall_height"] = 0.0
    prior = fit_prior(cg, mapping.bonds, TEMPERATURE, **prior_options)
    model = MODELS.get("prior")(bead_types=[0] * mapping.n_beads, prior=prior.hparams)
    simulate = load_config(None)["simulate"]
    masses = torch.as_tensor(np.array(mapping.bead_masses), dtype=torch.float32)
    integrator = BAOAB(
        model.energy_and_forces,
        masses,
        simulate["timestep"],
        torch.Generator().manual_seed(seed),
        friction=simulate["baoab"]["friction"],
    )
    pairs = torch.as_tensor(angle_end_pairs(mapping.n_beads, mapping.bonds))
    contact = np.quantile(
        pair_distances(torch.as_tensor(cg), pairs).numpy(), CONTACT_QUANTILE, axis=0
    )
    starts = np.random.default_rng(seed).choice(len(cg), n_replicas, replace=False)
    x = torch.as_tensor(cg[starts], dtype=torch.float32)
    simulation = Simulation(
        integrator,
        integrator.start(x, torch.full((n_replicas,), thermal_energy(TEMPERATURE))),
        Health.for_run(cg, mapping.bonds, simulate),
        save_every=simulate["save_every"],
        checkpoint_interval=n_steps,
    )
    frames, kept = simulation.advance(n_steps // simulate["save_every"])
    r = pair_distances(frames[kept], pairs).numpy()
    closest = float((r / contact).min()) if len(r) else np.inf
    below, checked = int((r < contact).any(axis=1).sum()), len(r)
    active = kept[-1]
    return {
        "beads": mapping.n_beads,
        "stable_fraction": float(active.float().mean()),
        "min_13_over_contact": closest,
        "frames_below_contact": below,
        "frames_checked": checked,
        "contact_nm_min": float(contact.min()) if len(contact) else np.nan,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trajectories", type=int, default=4)
    parser.add_argument("--ps", type=float, default=100.0, help="per reference trajectory")
    parser.add_argument("--cg-ps", type=float, default=100.0, help="per CG replica")
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/cgpipe_prior_stability"))
    parser.add_argument(
        "--without-wall", action="store_true", help="also run each map with no angle wall"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/prior_stability.tsv")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    resolve_structure(ALA2)
    torch.set_num_threads(1)  # tiny systems: threads cost more than they give
    data = reference(args.cache, args.trajectories, args.ps)
    rows = []
    for name, mapping in maps(data).items():
        cg = np.einsum("ba,fax->fbx", mapping.coordinate_map, data.coordinates)
        for wall in (True, False) if args.without_wall else (True,):
            started = time.perf_counter()
            row = simulate_prior(mapping, cg, args.replicas, int(args.cg_ps / 0.002), wall=wall)
            seconds = time.perf_counter() - started
            rows.append({"map": name, "angle_wall": wall, **row, "seconds": seconds})
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(args.out, sep="\t", index=False, float_format="%.4g")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
