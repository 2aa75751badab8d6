"""The largest time step at which a trained CG model's replicas survive.

For each time step, ``--replicas`` replicas of the model start from the fold's training
frames (the simulate stage's start set) and run ``--steps`` steps of the configured
integrator, checked every save by the simulate stage's health checks (NaN, collisions,
stretched bonds, bonds or angles outside the reference's 0.1-99.9 % range for the
configured window). The table gives each step's surviving fraction with its Wilson 95 %
interval; the largest stable step is the largest at which at least 99 % survive (with
every smaller step also at 99 %): with 64 replicas, that is none failed. Time steps run
in increasing order and stop after the first whose surviving fraction is below
``--stop-below``. The forces are made as the simulate stage makes them: compiled (unless
``--no-compile``), SchNet filters tabulated as ``simulate.filter_table`` says (unless
``--filter-table``).

The configuration is the run's (``config/config.yaml``, ``--config``), checked to split
the folds as the model's training did, so that the start set and the health limits are
the run's: the schema's defaults have another number of folds than the default run.

Run after ``make run`` (it reads that run's artifacts)::

    python benchmarks/stable_timestep.py                      # 64 replicas x 1e5 steps
    python benchmarks/stable_timestep.py --steps 10000 --timesteps 2 4 6

The table goes to ``benchmarks/stable_timestep.tsv`` (``--output``) and stdout, one row
per time step with the model, fold, replicas, steps run and the cgpipe commit. The
issue's target is 10^5 steps on a CPU, 10^6 on a GPU.
"""

from __future__ import annotations

import argparse
import logging
import math
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import yaml

import cgpipe
from cgpipe.config import load_config, load_systems, system_config
from cgpipe.data import FoldData
from cgpipe.io.blocks import Blocks
from cgpipe.mapping import read_mapping
from cgpipe.models import load_model
from cgpipe.observables import choose_states
from cgpipe.paths import RESOLVED_CONFIG_FILE
from cgpipe.simulate import INTEGRATORS, Health, Simulation
from cgpipe.simulate.compiled import energy_and_forces
from cgpipe.simulate.stage import check_temperature, start_set
from cgpipe.units import thermal_energy

OUTPUT = Path(__file__).with_suffix(".tsv")
RESULTS = Path("results")


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of k successes in n trials."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def commit() -> str:
    """The commit of the cgpipe that runs, ``+dirty`` where its package has uncommitted
    changes, or ``unknown`` outside a git checkout."""
    package = Path(cgpipe.__file__).parent

    def git(*words: str) -> str:
        return subprocess.run(
            ["git", "-C", str(package), *words], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        head = git("rev-parse", "--short", "HEAD")
        dirty = git("status", "--porcelain", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def run_config(path: Path, system: str, fold_dir: Path) -> dict[str, Any]:
    """The finished run's configuration for ``system`` (``path`` with the systems sheet's
    overrides, as the workflow resolves it), checked against the one the model in
    ``fold_dir`` was trained with: the same number of folds, so that the fold's training
    frames (the start set, the health limits) are the model's. The training config is
    read as plain YAML: it holds every key of the schema it was written with, and a later
    schema may have dropped some."""
    config = load_config(path)
    config = system_config(config, load_systems(config["systems"]).loc[system].to_dict())
    with open(fold_dir / RESOLVED_CONFIG_FILE) as handle:
        trained = yaml.safe_load(handle)
    if trained["train"]["n_folds"] != config["train"]["n_folds"]:
        raise SystemExit(
            f"{path}: train.n_folds is {config['train']['n_folds']}, but the model in "
            f"{fold_dir} was trained with {trained['train']['n_folds']} folds"
        )
    return config


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--system", default="ala2")
    parser.add_argument("--mapping", default="backbone_cb")
    parser.add_argument("--model", default="cgschnet")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument("--timesteps", type=float, nargs="+", default=[2, 3, 4, 5, 6, 8])
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-compile", action="store_true")
    parser.add_argument(
        "--filter-table",
        type=int,
        help="SchNet filter table, points per Gaussian width (0: exact; default: the "
        "configuration's simulate.filter_table, as the simulate stage)",
    )
    parser.add_argument(
        "--stop-below",
        type=float,
        default=0.9,
        help="stop after a time step whose surviving fraction is below this",
    )
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    cg_path = RESULTS / "cg" / args.system / f"{args.mapping}.h5"
    mapping = read_mapping(RESULTS / "mapping" / args.system / f"{args.mapping}.parquet")
    fold_dir = RESULTS / "train" / args.system / args.mapping / args.model / f"fold{args.fold}"
    model_path = fold_dir / "model.pt"
    config = run_config(args.config, args.system, fold_dir)
    section = config["simulate"]
    check_temperature(model_path, config["temperature"])
    model = load_model(model_path)
    model.eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    folds = FoldData.read(cg_path, config["train"]["n_folds"], args.fold)
    states = choose_states(folds.training, config["observables"]["tica_lag"])
    starts, _ = start_set(states, folds, args.replicas)
    x = torch.as_tensor(folds.data.coordinates[starts], dtype=torch.float32)
    points = section["filter_table"] if args.filter_table is None else args.filter_table
    forces = energy_and_forces(model, x, compile=not args.no_compile, filter_table=points)
    # energy_and_forces falls back to eager, and to exact filters, where a check fails.
    compiled = forces != model.energy_and_forces  # bound methods: equal, not identical
    tabulated = any(getattr(m, "filter_table", None) is not None for m in model.modules())
    force_call = ("compiled" if compiled else "eager") + (
        f", filter table {points}" if tabulated else ", exact filters"
    )
    version = commit()
    masses = torch.as_tensor(np.array(mapping.bead_masses), dtype=torch.float32)
    kT = torch.full((args.replicas,), thermal_energy(config["temperature"]))
    rows = []
    for femtoseconds in sorted(args.timesteps):
        timestep = femtoseconds * 1e-3
        # Saves (health checks) every 0.1 ps, as the default run checks; at least
        # --steps steps, in whole saves.
        save_every = max(1, round(0.1 / timestep))
        n_steps = -(-args.steps // save_every) * save_every
        run_section = {**section, "timestep": timestep, "save_every": save_every}
        health = Health.for_run(folds.training.coordinates, mapping.bonds, run_section)
        integrator = INTEGRATORS.get(section["integrator"])(
            forces,
            masses,
            timestep,
            torch.Generator().manual_seed(0),
            **section.get(section["integrator"], {}),
        )
        simulation = Simulation(
            integrator,
            integrator.start(x, kT),
            health,
            save_every=save_every,
            checkpoint_interval=max(save_every, n_steps // 10),
        )
        start = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            outcome = simulation.run(n_steps, Blocks(folder, "stable_timestep"))
        seconds = time.perf_counter() - start
        survived = int(outcome.stable.sum())
        low, high = wilson(survived, args.replicas)
        reasons = pd.Series([r for r in outcome.reasons if r]).value_counts().to_dict()
        failed_ps = (outcome.failed_save[~outcome.stable] + 1) * save_every * timestep
        rows.append(
            {
                "system": args.system,
                "mapping": args.mapping,
                "model": args.model,
                "fold": args.fold,
                "integrator": section["integrator"],
                "timestep_fs": femtoseconds,
                "steps": n_steps,
                "replicas": args.replicas,
                "survived": survived,
                "fraction": round(survived / args.replicas, 4),
                "low": round(low, 4),
                "high": round(high, 4),
                "failures": ", ".join(f"{k} {v}" for k, v in reasons.items()) or "-",
                "first_failure_ps": round(float(failed_ps.min()), 1) if len(failed_ps) else "-",
                "forces": force_call,
                "threads": args.threads,
                "seconds": round(seconds, 1),
                "commit": version,
            }
        )
        print(pd.DataFrame(rows[-1:]).to_string(index=False, header=len(rows) == 1), flush=True)
        if survived / args.replicas < args.stop_below:
            break
    table = pd.DataFrame(rows)
    stable = (table["fraction"] >= 0.99).cumprod().astype(bool)
    largest = table["timestep_fs"][stable].max() if stable.any() else None
    table.to_csv(args.output, sep="\t", index=False)
    print(table.to_string(index=False))
    print(
        f"largest stable time step ({args.model}, {args.mapping}, fold {args.fold}, "
        f">= 99 % of {args.replicas} replicas surviving {args.steps} steps): "
        + (f"{largest:g} fs" if largest is not None else "none of those tried")
    )


if __name__ == "__main__":
    main()
