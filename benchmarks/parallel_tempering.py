"""Exchange acceptance of parallel tempering with a trained CG model, per pair of rungs.

Runs the simulate stage (:func:`cgpipe.simulate.run`, its start set, health checks and
seed) with ``simulate.integrator: parallel_tempering`` on a trained model of a finished
run, once per ``--ladder``, into a scratch folder, and tabulates from its
``exchanges.parquet`` and ``health.parquet`` each neighbouring pair's acceptance and the
fraction of replicas that survived (a replica fails when any of its rungs does), both
with Wilson 95 % intervals. The configuration is the run's (``config/config.yaml``,
``--config``; checked to split the folds as the model's training did), with the
integrator, its section, the replicas and the steps replaced.

The intervals treat every attempt as independent; successive attempts of one replica are
correlated, so they are narrower than the truth (the run's length sets how much).

Run after ``make run``, from the run's folder (it reads ``results/``)::

    python benchmarks/parallel_tempering.py --steps 20000 --ladder 1,1.25,1.56,1.95

The table goes to ``benchmarks/parallel_tempering_ala2.tsv`` (``--output``), one row per
pair and ladder; ``--append`` keeps the rows of other ladders already there.
"""

from __future__ import annotations

import argparse
import copy
import logging
import shutil
import time
from pathlib import Path

import pandas as pd
import torch

# benchmarks/ is on sys.path when a script in it runs: the run-reading helpers are
# stable_timestep.py's.
from stable_timestep import commit, run_config, wilson

from cgpipe import keys
from cgpipe.config import load_config
from cgpipe.io import read_table
from cgpipe.paths import EXCHANGES_FILE, HEALTH_FILE
from cgpipe.seeds import stage_seed
from cgpipe.simulate import run

OUTPUT = Path(__file__).with_name("parallel_tempering_ala2.tsv")
RESULTS = Path("results")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--system", default="ala2")
    parser.add_argument("--mapping", default="backbone_cb")
    parser.add_argument("--model", default="cgschnet")
    parser.add_argument("--fold", type=int, default=0)
    parser.add_argument(
        "--ladder",
        action="append",
        help="temperatures as multiples of the system's, comma-separated (repeatable; "
        "default: the schema's)",
    )
    parser.add_argument("--exchange-every", type=int, help="default: the schema's")
    parser.add_argument("--replicas", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--config", type=Path, default=Path("config/config.yaml"))
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/cgpipe_parallel_tempering"))
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--append", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    torch.set_num_threads(args.threads)
    cg_path = RESULTS / "cg" / args.system / f"{args.mapping}.h5"
    mapping_path = RESULTS / "mapping" / args.system / f"{args.mapping}.parquet"
    fold_dir = RESULTS / "train" / args.system / args.mapping / args.model / f"fold{args.fold}"
    model_path = fold_dir / "model.pt"
    config = run_config(args.config, args.system, fold_dir)
    defaults = load_config(None)["simulate"]["parallel_tempering"]
    ladders = (
        [[float(t) for t in ladder.split(",")] for ladder in args.ladder]
        if args.ladder
        else [defaults["ladder"]]
    )
    version = commit()
    rows = []
    for ladder in ladders:
        raw = copy.deepcopy(config)
        section = {**defaults, "ladder": ladder}
        if args.exchange_every:
            section["exchange_every"] = args.exchange_every
        raw["simulate"].update(
            integrator="parallel_tempering",
            parallel_tempering=section,
            n_replicas=args.replicas,
            n_steps=args.steps,
        )
        cfg = load_config(raw)
        params = cfg["simulate"]
        output_dir = args.scratch / "_".join(f"{t:g}" for t in ladder)
        shutil.rmtree(output_dir, ignore_errors=True)
        seed = stage_seed(
            cfg["seed"],
            "simulate",
            args.system,
            mapping=args.mapping,
            model=args.model,
            fold=args.fold,
        )
        start = time.perf_counter()
        run(
            model_path,
            cg_path,
            mapping_path,
            output_dir,
            fold=args.fold,
            cfg=cfg,
            seed=seed,
            threads=args.threads,
        )
        seconds = time.perf_counter() - start
        exchanges = read_table(output_dir / EXCHANGES_FILE)
        health = read_table(output_dir / HEALTH_FILE)
        survived = int(health[keys.STABLE].sum())
        survived_low, survived_high = wilson(survived, len(health))
        reasons = health.loc[~health[keys.STABLE], keys.FAILURE_REASON].value_counts()
        for exchange in exchanges.itertuples():
            low, high = wilson(int(exchange.accepted), int(exchange.attempts))
            rows.append(
                {
                    "system": args.system,
                    "mapping": args.mapping,
                    "model": args.model,
                    "fold": args.fold,
                    "ladder": " ".join(f"{t:g}" for t in ladder),
                    "pair": exchange.pair,
                    "temperature_low": round(exchange.temperature_low, 1),
                    "temperature_high": round(exchange.temperature_high, 1),
                    "attempts": exchange.attempts,
                    "accepted": exchange.accepted,
                    "acceptance": round(exchange.acceptance, 4),
                    "low": round(low, 4),
                    "high": round(high, 4),
                    "replicas": len(health),
                    "survived": survived,
                    "survived_low": round(survived_low, 4),
                    "survived_high": round(survived_high, 4),
                    "failures": ", ".join(f"{k} {v}" for k, v in reasons.items()) or "-",
                    "steps": params["n_steps"],
                    "timestep_fs": params["timestep"] * 1e3,
                    "exchange_every": section["exchange_every"],
                    "friction": section["friction"],
                    "threads": args.threads,
                    "seconds": round(seconds, 1),
                    "commit": version,
                }
            )
        print(pd.DataFrame(rows).to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    if args.append and args.output.exists():
        old = pd.read_csv(args.output, sep="\t", dtype={"ladder": str})
        table = pd.concat([old[~old["ladder"].isin(table["ladder"])], table], ignore_index=True)
    table.to_csv(args.output, sep="\t", index=False)


if __name__ == "__main__":
    main()
