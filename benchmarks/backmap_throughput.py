"""Backmapping cost: the flow against retrieval, per CG frame, in the same process.

For alanine dipeptide (backbone_cb) and chignolin (calpha), both built as the reference
stage builds them (GBn2, 2 fs, HBonds, 300 K): a short recorded run gives the all-atom
training frames and, through the map, the CG frames to backmap. Each backmapper is
fitted on them, retrieval as in the pipeline and the flow for one short epoch (what a
draw costs does not depend on the weights), and then backmaps the same CG frames
``--repeats`` times, the flow also without its distance constraints (``constrain:
0``, "flow, unconstrained"); the table gives the median seconds per CG frame (the flow
draws ``backmap.flow.samples`` structures of each), per structure, and the ratio to
retrieval's cost on the same frames; and, where the reference's force field applies,
the restrained minimisation's cost per structure. CPU runs on one thread; with
``--device cuda`` the flow draws on the GPU as well.

Run: ``python benchmarks/backmap_throughput.py`` (or ``make benchmark``); the table goes
to ``benchmarks/backmap_throughput.tsv`` and stdout.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from cgpipe.backmap import BACKMAPPERS
from cgpipe.backmap.energy import ForceField
from cgpipe.config import load_config
from cgpipe.io import TrajectoryData, read_trajectory
from cgpipe.mapping import MAPPINGS
from cgpipe.reference import generate_trajectory, prepare_structure

SYSTEMS = {
    "ala2": (
        "backbone_cb",
        {"structure": "openmmtools:data/alanine-dipeptide-gbsa/alanine-dipeptide.pdb"},
    ),
    "chignolin": ("calpha", {"sequence": "GYDPETGTWG"}),
}
OUTPUT = Path(__file__).with_suffix(".tsv")


def record(system: str, source: dict, scratch: Path, n_frames: int) -> tuple[Path, TrajectoryData]:
    """The prepared structure and ``n_frames`` frames 0.1 ps apart after 10 ps."""
    cfg = load_config(None)
    structure = scratch / f"{system}.pdb"
    prepare_structure(structure, system=system, params=cfg["reference"], seed=1, **source)
    params = {
        **cfg["reference"],
        "n_steps": 50 * n_frames,
        "save_every": 50,
        "equilibration_steps": 5000,
        "start_steps": 0,
    }
    path = scratch / f"{system}.h5"
    generate_trajectory(
        structure,
        path,
        system=system,
        index=0,
        temperature=300.0,
        params=params,
        master_seed=1,
        threads=1,
    )
    return structure, read_trajectory(path)


def seconds(call, repeats: int) -> tuple[float, list[float]]:
    """Median and every wall time of ``call()``, after one call not counted."""
    call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--frames", type=int, default=400, help="recorded training frames")
    parser.add_argument("--cg-frames", type=int, default=32, help="CG frames backmapped per call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg = load_config(None)["backmap"]
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for system in args.systems:
            mapping_name, source = SYSTEMS[system]
            structure, data = record(system, source, Path(scratch), args.frames)
            mapping = MAPPINGS.get(mapping_name)().build(data.topology, None)
            picked = np.linspace(0, data.n_frames - 1, args.cg_frames).astype(int)
            cg = TrajectoryData(
                mapping.topology,
                np.einsum("ba,fad->fbd", mapping.coordinate_map, data.coordinates[picked]),
                data.time[picked],
                trajectory_index=np.zeros(len(picked), dtype=np.int64),
            )
            flow = {**cfg["flow"], "epochs": 1, "max_frames": 64}
            options = {
                "nearest": ("nearest", cfg["nearest"]),
                "flow": ("flow", flow),
                "flow, unconstrained": ("flow", {**flow, "constrain": 0}),
            }
            costs = {}
            for label, (method, section) in options.items():
                backmapper = BACKMAPPERS.get(method)(**section)
                devices = (
                    ["cpu"] if method == "nearest" or args.device == "cpu" else ["cpu", args.device]
                )
                for device in devices:
                    backmapper.fit(data, mapping, seed=0, device=device)
                    median, times = seconds(lambda b=backmapper, c=cg: b.backmap(c), args.repeats)
                    per_frame = median / cg.n_frames
                    costs.setdefault(label, per_frame)
                    rows.append(
                        {
                            "system": system,
                            "mapping": mapping_name,
                            "atoms": data.topology.n_atoms,
                            "beads": mapping.coordinate_map.shape[0],
                            "backmapper": label,
                            "device": device,
                            "samples": backmapper.samples,
                            "cg_frames": cg.n_frames,
                            "ms_per_cg_frame": 1e3 * per_frame,
                            "ms_per_structure": 1e3 * per_frame / backmapper.samples,
                            "ratio_to_nearest": per_frame / costs["nearest"],
                            "runs_s": ",".join(f"{t:.3f}" for t in times),
                        }
                    )
            forcefield = ForceField(structure, load_config(None)["reference"], data.topology)
            structures = data.coordinates[picked]
            median, times = seconds(
                lambda f=forcefield, x=structures: f.minimise(x, restraint=cfg["restraint"]),
                args.repeats,
            )
            rows.append(
                {
                    "system": system,
                    "mapping": mapping_name,
                    "atoms": data.topology.n_atoms,
                    "beads": mapping.coordinate_map.shape[0],
                    "backmapper": "restrained minimisation",
                    "device": "cpu",
                    "samples": 1,
                    "cg_frames": len(structures),
                    "ms_per_cg_frame": np.nan,
                    "ms_per_structure": 1e3 * median / len(structures),
                    "ratio_to_nearest": np.nan,
                    "runs_s": ",".join(f"{t:.3f}" for t in times),
                }
            )
    table = pd.DataFrame(rows)
    table.to_csv(args.output, sep="\t", index=False, float_format="%.4g")
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
