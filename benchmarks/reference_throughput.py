"""Reference generation throughput against raw OpenMM stepping of the same system.

For each system (alanine dipeptide from openmmtools, chignolin built from its sequence;
GBn2, 2 fs, HBonds, 300 K), in the same process and on the same platform:

- ``raw``: ``Simulation.step(n_steps)`` with nothing read back;
- ``cgpipe``: :func:`cgpipe.reference.generate_trajectory`, which reads positions and
  forces every ``save_every`` steps, writes blocks and checkpoints, and assembles the
  artifact. Its ns/day is the recording loop's, as the artifact's provenance states.

The two alternate ``--repeats`` times and the medians are compared; the overhead is
1 - cgpipe / raw. Run: ``python benchmarks/reference_throughput.py`` (or ``make
benchmark``); the table goes to ``benchmarks/reference_throughput.tsv`` and stdout.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import openmm.unit as unit
import pandas as pd

from cgpipe.config import load_config
from cgpipe.reference import choose_platform, generate_trajectory, prepare_structure
from cgpipe.reference.openmm_generation import ReferenceSystem

SYSTEMS = {
    "ala2": {"structure": "openmmtools:data/alanine-dipeptide-gbsa/alanine-dipeptide.pdb"},
    "chignolin": {"sequence": "GYDPETGTWG"},
}
OUTPUT = Path(__file__).with_suffix(".tsv")


def raw_ns_per_day(structure: Path, params: dict, platform: str, threads: int) -> float:
    """ns/day of plain stepping, after minimisation and a short warm-up."""
    reference = ReferenceSystem(structure, params, 300.0)
    simulation = reference.simulation(
        reference.system(barostat=False), 1, choose_platform(platform), threads
    )
    simulation.context.setPositions(reference.positions)
    simulation.minimizeEnergy()
    simulation.context.setVelocitiesToTemperature(300.0 * unit.kelvin, 1)
    simulation.step(params["equilibration_steps"])
    start = time.perf_counter()
    simulation.step(params["n_steps"])
    # getState waits for the platform to finish (GPU platforms run asynchronously).
    simulation.context.getState(getEnergy=True)
    seconds = time.perf_counter() - start
    return params["n_steps"] * params["timestep"] * 1e-3 / seconds * 86400.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--systems", nargs="+", default=list(SYSTEMS), choices=list(SYSTEMS))
    parser.add_argument("--ala2-steps", type=int, default=50000)
    parser.add_argument("--chignolin-steps", type=int, default=10000)
    parser.add_argument("--save-every", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--platform", default=None, help="OpenMM platform (default: fastest)")
    parser.add_argument("--threads", type=int, default=1, help="CPU platform threads")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    platform = choose_platform(args.platform).getName()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        for name in args.systems:
            params = load_config(None)["reference"]
            steps = args.ala2_steps if name == "ala2" else args.chignolin_steps
            params.update(
                n_steps=steps, save_every=args.save_every, equilibration_steps=500, start_steps=0
            )
            structure = scratch / f"{name}.pdb"
            prepare_structure(structure, system=name, params=params, seed=1, **SYSTEMS[name])
            raw, recorded = [], []
            for repeat in range(args.repeats):
                raw.append(raw_ns_per_day(structure, params, platform, args.threads))
                extra = generate_trajectory(
                    structure,
                    scratch / f"{name}_{repeat}.h5",
                    system=name,
                    index=repeat,
                    temperature=300.0,
                    params=params,
                    master_seed=1,
                    threads=args.threads,
                    platform_name=platform,
                )
                recorded.append(extra["ns_per_day"])
            raw_median, recorded_median = statistics.median(raw), statistics.median(recorded)
            rows.append(
                {
                    "system": name,
                    "atoms": extra["simulated_atoms"],
                    "platform": platform,
                    "threads": args.threads,
                    "steps": steps,
                    "save_every": args.save_every,
                    "raw_ns_per_day": round(raw_median, 1),
                    "cgpipe_ns_per_day": round(recorded_median, 1),
                    "ratio": round(recorded_median / raw_median, 3),
                    "overhead_percent": round(100.0 * (1.0 - recorded_median / raw_median), 1),
                    "raw_runs": " ".join(f"{x:.1f}" for x in raw),
                    "cgpipe_runs": " ".join(f"{x:.1f}" for x in recorded),
                }
            )
    table = pd.DataFrame(rows)
    table.to_csv(args.output, sep="\t", index=False)
    print(table.to_markdown(index=False) if _has_tabulate() else table.to_string(index=False))
    print(f"\nwritten to {args.output}")


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


if __name__ == "__main__":
    main()
