"""The ``cgpipe`` command line: one command per workflow stage.

Every Snakemake rule calls one of these, and each runs without Snakemake too. The
``--config`` option takes a YAML file or a JSON object (as the workflow passes a rule's
sections); missing keys take the schema's defaults.

An expected error (bad input, a bad file or configuration: :class:`~cgpipe.errors.InputError`
or :class:`FileNotFoundError`) is reported in one line, ``cgpipe <command>: error: ...``,
with exit status 2; ``cgpipe --debug <command>`` adds its traceback. Any other exception
is a bug and keeps its traceback.
"""

from __future__ import annotations

import dataclasses
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from cgpipe.config import load_config
from cgpipe.errors import InputError
from cgpipe.seeds import derive_seed

app = typer.Typer(
    help="Machine-learned coarse-grained force fields: one command per workflow stage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[str, typer.Option("--config", help="YAML file or JSON object.")]
ThreadsOption = Annotated[int, typer.Option(help="CPU threads.")]

# Errors of the user's making, reported in one line; every other exception is a bug.
EXPECTED_ERRORS = (InputError, FileNotFoundError)
# Exit status of an expected error: click's for a usage error, which is one too.
EXIT_INPUT_ERROR = 2


@dataclasses.dataclass
class _Run:
    """What the global options and the command line chose, for :func:`main`'s report."""

    command: str | None = None
    debug: bool = False


_run = _Run()


@app.callback()
def configure(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of an error in the input too.")
    ] = False,
) -> None:
    """Options of every command (given before the command's name)."""
    _run.command, _run.debug = ctx.invoked_subcommand, debug
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def prepare(
    system: Annotated[str, typer.Option(help="System name.")],
    output: Annotated[Path, typer.Option(help="Prepared structure (PDB) to write.")],
    structure: Annotated[
        str | None, typer.Option(help="PDB/mmCIF path or package:relative/path.")
    ] = None,
    sequence: Annotated[str | None, typer.Option(help="One-letter amino-acid sequence.")] = None,
    secondary_structure: Annotated[
        str, typer.Option(help="extended, helix, strand, polyproline, or H/E/P/C per residue.")
    ] = "extended",
    config: ConfigOption = "{}",
) -> None:
    """Build (sequence) or repair (structure) a system, add hydrogens, solvate if explicit."""
    from cgpipe.reference import prepare_structure

    cfg = load_config(config)
    prepare_structure(
        output,
        system=system,
        params=cfg["reference"],
        seed=derive_seed(cfg["seed"], "prepare", system),
        structure=structure,
        sequence=sequence,
        secondary_structure=secondary_structure,
    )


@app.command()
def reference(
    structure: Annotated[str, typer.Option(help="Prepared structure (see `cgpipe prepare`).")],
    system: Annotated[str, typer.Option(help="System name.")],
    index: Annotated[int, typer.Option(help="Trajectory number.")],
    output: Annotated[Path, typer.Option(help="Trajectory HDF5 to write.")],
    config: ConfigOption = "{}",
    threads: ThreadsOption = 1,
    platform: Annotated[
        str | None,
        typer.Option(help="OpenMM platform (default: $CGPIPE_OPENMM_PLATFORM, else the fastest)."),
    ] = None,
) -> None:
    """Generate one all-atom reference trajectory with positions and forces (resumable)."""
    from cgpipe.reference import generate_trajectory

    cfg = load_config(config)
    generate_trajectory(
        structure,
        output,
        system=system,
        index=index,
        temperature=cfg["temperature"],
        params=cfg["reference"],
        master_seed=cfg["seed"],
        threads=threads,
        platform_name=platform,
    )


@app.command()
def download(
    url: Annotated[str, typer.Option(help="URL of the file.")],
    output: Annotated[Path, typer.Option(help="Where to keep it (under resources/download/).")],
    known_hash: Annotated[
        str | None, typer.Option(help="Publisher's hash, e.g. md5:...; else pinned (SHA-256).")
    ] = None,
    size: Annotated[int | None, typer.Option(help="Publisher's size in bytes.")] = None,
    config: ConfigOption = "{}",
) -> None:
    """Download one file with a checksum; a file that differs from the hash is refused."""
    from cgpipe.reference.download import DownloadError, fetch

    cfg = load_config(config)
    try:
        fetch(url, output, known_hash=known_hash, size=size, retries=cfg["download"]["retries"])
    except DownloadError as error:
        # Its message says in one line why (checksum, size, HTTP error, offline...): the
        # URL, the hash or the network is the user's to check, not cgpipe's code.
        raise InputError(str(error)) from error


@app.command()
def ingest(
    source: Annotated[str, typer.Option(help="mdshare or mdcath.")],
    inputs: Annotated[list[Path], typer.Argument(help="Downloaded files (mdshare: pdb, xtc).")],
    system: Annotated[str, typer.Option(help="System name.")],
    index: Annotated[int, typer.Option(help="Trajectory (mdshare) or replica (mdcath) number.")],
    output: Annotated[Path, typer.Option(help="Trajectory HDF5 to write.")],
    config: ConfigOption = "{}",
) -> None:
    """Convert a downloaded trajectory to the reference artifact (nm, kJ/mol/nm)."""
    from cgpipe.io import sha256sum
    from cgpipe.reference.download import MDSHARE_CATALOGUE, DownloadRecord, pin_path
    from cgpipe.reference.ingest import ingest_mdcath, ingest_mdshare

    cfg = load_config(config)
    stride = cfg["download"]["stride"]
    base = cfg["download"]["mdshare_url" if source == "mdshare" else "mdcath_url"]
    records = []
    for path in inputs:
        if source == "mdshare" and path.name not in MDSHARE_CATALOGUE:
            raise InputError(f"{path}: not a file of cgpipe's mdshare catalogue")
        md5 = MDSHARE_CATALOGUE[path.name][0] if source == "mdshare" else None
        record = DownloadRecord(
            url=f"{base.rstrip('/')}/{path.name}",
            path=path,
            sha256=sha256sum(path),
            known_hash=f"md5:{md5}" if md5 else None,
            pinned=md5 is None and pin_path(path).exists(),
        )
        records.append(record.to_dict())
    if source == "mdshare":
        if len(inputs) != 2:
            raise typer.BadParameter(
                "mdshare takes the topology PDB and one XTC", param_hint="inputs"
            )
        ingest_mdshare(
            inputs[0],
            inputs[1],
            output,
            system=system,
            index=index,
            download=records,
            stride=stride,
        )
    elif source == "mdcath":
        if len(inputs) != 1:
            raise typer.BadParameter("mdcath takes one domain HDF5 file", param_hint="inputs")
        ingest_mdcath(
            inputs[0],
            output,
            system=system,
            temperature=int(cfg["temperature"]),
            replica=index,
            download=records,
            stride=stride,
        )
    else:
        raise typer.BadParameter(f"unknown source {source!r}", param_hint="--source")


@app.command()
def mapping(
    reference: Annotated[Path, typer.Option(help="A reference trajectory (for its topology).")],
    name: Annotated[str, typer.Option("--mapping", help="Mapping name (backbone, calpha).")],
    output: Annotated[Path, typer.Option(help="Mapping Parquet to write.")],
) -> None:
    """Build a CG mapping on the reference topology."""
    from cgpipe.io import Provenance, read_trajectory
    from cgpipe.mapping import build_fixed_mapping, write_mapping

    topology = read_trajectory(reference, stride=10**9).topology
    built = build_fixed_mapping(name, topology)
    write_mapping(output, built, Provenance("mapping", {"mapping": name}, [reference]))


@app.command()
def forces(
    references: Annotated[list[Path], typer.Argument(help="Reference trajectories, in order.")],
    mapping_path: Annotated[Path, typer.Option("--mapping", help="Mapping Parquet.")],
    output: Annotated[Path, typer.Option(help="CG HDF5 to write.")],
    config: ConfigOption = "{}",
) -> None:
    """Project all-atom positions and forces to CG, every trajectory into one file."""
    from cgpipe.forces import project
    from cgpipe.io import Provenance, TrajectoryData, read_trajectory, write_trajectory
    from cgpipe.mapping import read_mapping

    cfg = load_config(config)
    mapped = read_mapping(mapping_path)
    parts = []
    for path in references:
        data = read_trajectory(path)  # its errors name the file already
        try:
            parts.append(project(data, mapped))
        except InputError as error:  # names the mapping, not the trajectory
            raise InputError(f"{path}: {error}") from error
    combined = TrajectoryData.concatenate(parts)
    provenance = Provenance(
        "forces",
        {**cfg["forces"], "trajectories": [str(p) for p in references]},
        [mapping_path, *references],
    )
    write_trajectory(output, combined, provenance)


@app.command()
def train(
    cg: Annotated[Path, typer.Option(help="CG HDF5 with forces.")],
    mapping_path: Annotated[Path, typer.Option("--mapping", help="Mapping Parquet.")],
    model: Annotated[str, typer.Option(help="Model name (cgschnet, prior).")],
    fold: Annotated[int, typer.Option(help="Cross-validation fold.")],
    output_dir: Annotated[Path, typer.Option(help="Folder for model.pt and losses.parquet.")],
    config: ConfigOption = "{}",
    threads: ThreadsOption = 1,
) -> None:
    """Train one model on one cross-validation fold by force matching."""
    from cgpipe.train import train_fold

    cfg = load_config(config)
    train_fold(
        cg,
        mapping_path,
        output_dir,
        model_name=model,
        fold=fold,
        temperature=cfg["temperature"],
        params=cfg["train"],
        seed=derive_seed(cfg["seed"], "train", cg.parent.name, cg.stem, model, fold),
        threads=threads,
    )


@app.command()
def simulate(
    model_path: Annotated[Path, typer.Option("--model-file", help="Model checkpoint.")],
    cg: Annotated[Path, typer.Option(help="CG HDF5 (held-out frames start the replicas).")],
    mapping_path: Annotated[Path, typer.Option("--mapping", help="Mapping Parquet.")],
    fold: Annotated[int, typer.Option(help="Cross-validation fold of the model.")],
    output_dir: Annotated[Path, typer.Option(help="Folder for traj.h5 and health.parquet.")],
    config: ConfigOption = "{}",
    threads: ThreadsOption = 1,
) -> None:
    """Run batched Langevin replicas with a trained model."""
    from cgpipe.simulate import simulate_fold

    cfg = load_config(config)
    simulate_fold(
        model_path,
        cg,
        mapping_path,
        output_dir,
        fold=fold,
        n_folds=cfg["train"]["n_folds"],
        temperature=cfg["temperature"],
        params=cfg["simulate"],
        seed=derive_seed(
            cfg["seed"], "simulate", cg.parent.name, cg.stem, model_path.parent.parent.name, fold
        ),
        threads=threads,
    )


@app.command()
def backmap(
    references: Annotated[list[Path], typer.Argument(help="Reference trajectories, in order.")],
    simulation: Annotated[Path, typer.Option(help="CG trajectory to backmap.")],
    mapping_path: Annotated[Path, typer.Option("--mapping", help="Mapping Parquet.")],
    fold: Annotated[
        int, typer.Option(help="Cross-validation fold (templates from its training set).")
    ],
    output_dir: Annotated[Path, typer.Option(help="Folder for traj.h5 and backmap.parquet.")],
    config: ConfigOption = "{}",
) -> None:
    """Map a CG trajectory back to all atoms."""
    from cgpipe.backmap import backmap_fold

    cfg = load_config(config)
    backmap_fold(
        simulation,
        [str(p) for p in references],
        mapping_path,
        output_dir,
        fold=fold,
        n_folds=cfg["train"]["n_folds"],
        params=cfg["backmap"],
    )


@app.command()
def evaluate(
    cg: Annotated[Path, typer.Option(help="CG HDF5 of the reference.")],
    system: Annotated[str, typer.Option(help="System name.")],
    mapping_name: Annotated[str, typer.Option("--mapping", help="Mapping name.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    train_dir: Annotated[list[Path], typer.Option(help="Per fold, in order: training folder.")],
    simulate_dir: Annotated[list[Path], typer.Option(help="Per fold: simulation folder.")],
    backmap_dir: Annotated[list[Path], typer.Option(help="Per fold: backmapping folder.")],
    output_dir: Annotated[Path, typer.Option(help="Folder for metrics.parquet and fes.png.")],
    config: ConfigOption = "{}",
) -> None:
    """Score every fold of one model against the reference."""
    from cgpipe.evaluate import evaluate_model

    cfg = load_config(config)
    if not len(train_dir) == len(simulate_dir) == len(backmap_dir):
        raise typer.BadParameter("give one --train-dir, --simulate-dir and --backmap-dir per fold")
    folds = [
        {
            "model": str(t / "model.pt"),
            "traj": str(s / "traj.h5"),
            "health": str(s / "health.parquet"),
            "backmap": str(b / "backmap.parquet"),
        }
        for t, s, b in zip(train_dir, simulate_dir, backmap_dir, strict=True)
    ]
    evaluate_model(
        cg,
        folds,
        output_dir,
        system=system,
        mapping=mapping_name,
        model_name=model,
        n_folds=cfg["train"]["n_folds"],
        temperature=cfg["temperature"],
        params=cfg["evaluate"],
    )


@app.command()
def report(
    output: Annotated[Path, typer.Option(help="HTML page to write.")],
    metrics: Annotated[list[Path], typer.Option(help="metrics.parquet of each model.")],
    fes: Annotated[list[Path], typer.Option(help="fes.png of each model, same order.")],
) -> None:
    """Write the self-contained HTML report."""
    from cgpipe.report import write_report

    write_report(output, [str(m) for m in metrics], [str(f) for f in fes])


def _one_line(error: BaseException) -> str:
    """The message of an expected error on one line (a configuration's errors joined)."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        # open()'s own message reads "[Errno 2] No such file or directory: 'x'".
        return f"{error.filename}: {error.strerror}"
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines) or type(error).__name__


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line (the ``cgpipe`` console script).

    An expected error ends the program with one line on stderr and exit status 2 (its
    traceback above it with ``--debug``); any other exception propagates with its
    traceback.

    Parameters
    ----------
    argv
        The arguments after the program name; ``sys.argv[1:]`` when ``None``.
    """
    _run.command, _run.debug = None, False
    try:
        app(args=argv, prog_name="cgpipe")
    except EXPECTED_ERRORS as error:
        if _run.debug:
            traceback.print_exception(error)
        where = f"cgpipe {_run.command}" if _run.command else "cgpipe"
        print(f"{where}: error: {_one_line(error)}", file=sys.stderr)
        sys.exit(EXIT_INPUT_ERROR)


if __name__ == "__main__":
    main()
