"""The ``cgpipe`` command line: one command per workflow stage.

Every Snakemake rule calls one of these, and each runs without Snakemake too. A
command parses its options, validates the configuration and calls the one ``run`` of
its stage; the stage writes its artifacts and, beside them, the configuration it ran
with. The ``--config`` option takes a YAML file or a JSON object (as the workflow passes
a job's sections, :func:`cgpipe.config.job_config`); missing keys take the schema's
defaults.

An expected error (bad input, a bad file or configuration: :class:`~cgpipe.errors.InputError`
or :class:`FileNotFoundError`) is reported in one line, ``cgpipe <command>: error: ...``,
with exit status 2; ``cgpipe --debug <command>`` adds its traceback. Any other exception
is a bug and keeps its traceback.

Two commands read what the stages wrote: ``cgpipe provenance`` prints an artifact's
lineage and ``cgpipe verify`` re-hashes it (:mod:`cgpipe.io.lineage`); a lineage whose
files are not the ones recorded is a finding, exit status 1, each file named on stderr.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import logging
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from cgpipe import paths
from cgpipe.config import load_config
from cgpipe.errors import InputError
from cgpipe.seeds import derive_seed, stage_seed
from cgpipe.stages import write_resolved_config

app = typer.Typer(
    help="Machine-learned coarse-grained force fields: one command per workflow stage.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ConfigOption = Annotated[str, typer.Option("--config", help="YAML file or JSON object.")]
ThreadsOption = Annotated[int, typer.Option(help="CPU threads.")]
FoldOption = Annotated[int, typer.Option(help="Cross-validation fold.")]
MappingOption = Annotated[Path, typer.Option("--mapping", help="Mapping Parquet.")]
CgOption = Annotated[
    Path, typer.Option("--cg", help="CG HDF5 of the reference (all trajectories).")
]
OutputDirOption = Annotated[Path, typer.Option(help="Folder for the stage's artifacts.")]
ReferencesArgument = Annotated[list[Path], typer.Argument(help="Reference trajectories, in order.")]

# Errors of the user's making, reported in one line; every other exception is a bug.
EXPECTED_ERRORS = (InputError, FileNotFoundError)
# Exit status of an expected error: click's for a usage error, which is one too.
EXIT_INPUT_ERROR = 2
# Exit status of a check that ran and found something wrong (`cgpipe verify`): a finding
# about the files, not a mistake in the command.
EXIT_VERIFY_FAILED = 1


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
        seed=stage_seed(cfg["seed"], "prepare", system),
        structure=structure,
        sequence=sequence,
        secondary_structure=secondary_structure,
    )
    write_resolved_config(output, cfg)


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
    write_resolved_config(output, cfg)


@app.command()
def download(
    source: Annotated[str, typer.Option(help="mdshare or mdcath.")],
    output: Annotated[
        Path, typer.Option(help="Where to keep the file (its name is the dataset's file name).")
    ],
    config: ConfigOption = "{}",
) -> None:
    """Download one file of a public dataset, checked against the publisher's hash or a pin."""
    from cgpipe.reference.download import run

    run(source, output, cfg=load_config(config))


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
    from cgpipe.reference.ingest import run

    run(source, inputs, output, system=system, index=index, cfg=load_config(config))


@app.command()
def mapping(
    references: ReferencesArgument,
    name: Annotated[
        str, typer.Option("--mapping", help="Mapping name (registered, or a user's map file).")
    ],
    output: Annotated[Path, typer.Option(help="Mapping Parquet to write.")],
    config: ConfigOption = "{}",
    fold: Annotated[
        int | None, typer.Option(help="Fold whose training trajectories a fitted map learns from.")
    ] = None,
) -> None:
    """Build a CG mapping on the reference (fixed maps read the topology only)."""
    from cgpipe.mapping import run

    cfg = load_config(config)
    job = paths.identify(output, paths.MAPPING if fold is None else paths.MAPPING_FOLD)
    expected = {"mapping": name} if fold is None else {"mapping": name, "fold": str(fold)}
    if {key: value for key, value in job.items() if key != "system"} != expected:
        raise InputError(
            f"{output}: not the artifact of mapping {name!r}"
            + ("" if fold is None else f" on fold {fold}")
        )
    seed = stage_seed(cfg["seed"], "mapping", job["system"], mapping=name, fold=fold)
    run(references, output, name=name, cfg=cfg, fold=fold, seed=seed)


@app.command()
def forces(
    references: ReferencesArgument,
    mapping_path: MappingOption,
    output: Annotated[Path, typer.Option(help="CG HDF5 to write.")],
    config: ConfigOption = "{}",
    fold: Annotated[
        int | None, typer.Option(help="Fold whose training trajectories a fitted force map sees.")
    ] = None,
) -> None:
    """Project all-atom positions and forces to CG, every trajectory into one file."""
    from cgpipe.forces import run

    run(references, mapping_path, output, cfg=load_config(config), fold=fold)


@app.command()
def compare(
    references: ReferencesArgument,
    maps: Annotated[
        list[Path], typer.Option("--map", help="Per fold, in order: the map that fold uses.")
    ],
    system: Annotated[str, typer.Option(help="System name.")],
    name: Annotated[str, typer.Option("--mapping", help="Mapping name.")],
    output: Annotated[Path, typer.Option(help="Scores Parquet to write.")],
    config: ConfigOption = "{}",
) -> None:
    """Score a mapping on every fold's held-out frames beside random maps of as many beads."""
    from cgpipe.mapping.compare import run

    run(references, maps, output, system=system, name=name, cfg=load_config(config))


def _cg_job(cg: Path, fold: int) -> tuple[str, str]:
    """System and mapping of a CG reference, read with the path grammar: a fixed map's
    (``results/cg/{system}/{mapping}.h5``) or fold ``fold``'s of a fitted map."""
    job = paths.identify(cg, paths.CG_FOLD, paths.CG)
    if "fold" in job and int(job["fold"]) != fold:
        raise InputError(f"{cg}: the CG reference of fold {job['fold']}, given for fold {fold}")
    return job["system"], job["mapping"]


@app.command()
def train(
    cg: CgOption,
    mapping_path: MappingOption,
    model: Annotated[str, typer.Option(help="Model name (a registered model).")],
    fold: FoldOption,
    output_dir: OutputDirOption,
    config: ConfigOption = "{}",
    threads: ThreadsOption = 1,
) -> None:
    """Train one model on one cross-validation fold."""
    from cgpipe.train import run

    cfg = load_config(config)
    system, mapping = _cg_job(cg, fold)
    seed = stage_seed(cfg["seed"], "train", system, mapping=mapping, model=model, fold=fold)
    run(cg, mapping_path, output_dir, model=model, fold=fold, cfg=cfg, seed=seed, threads=threads)


def _model_job_command(stage: str, summary: str) -> Callable[..., None]:
    """Register ``cgpipe <stage>``, a job that runs one fold's trained model (simulate,
    sample): one signature, one seed rule, the stage's ``run``."""

    def command(
        model_path: Annotated[Path, typer.Option("--model-file", help="Model checkpoint.")],
        cg: CgOption,
        mapping_path: MappingOption,
        fold: FoldOption,
        output_dir: OutputDirOption,
        config: ConfigOption = "{}",
        threads: ThreadsOption = 1,
    ) -> None:
        run = importlib.import_module(f"cgpipe.{stage}").run
        cfg = load_config(config)
        seed = _model_job_seed(stage, model_path, cg, fold, cfg)
        run(
            model_path, cg, mapping_path, output_dir, fold=fold, cfg=cfg, seed=seed, threads=threads
        )

    command.__doc__ = summary
    command.__name__ = command.__qualname__ = stage
    return app.command(name=stage)(command)


simulate = _model_job_command(
    "simulate", "Run batched replicas of a trained model from held-out frames."
)
sample = _model_job_command(
    "sample", "Draw i.i.d. configurations of a trained model that samples without dynamics."
)


def _model_job_seed(stage: str, model_path: Path, cg: Path, fold: int, cfg: dict) -> int:
    """The seed of a job that uses fold ``fold``'s trained model, after checking that the
    model's path names the same system, mapping and fold as the CG reference's."""
    system, mapping = _cg_job(cg, fold)
    trained = paths.identify(model_path, paths.MODEL)
    if (trained["system"], trained["mapping"], int(trained["fold"])) != (system, mapping, fold):
        raise InputError(
            f"{model_path}: a model of {trained['system']}/{trained['mapping']} fold "
            f"{trained['fold']}, given with the CG reference {cg} for fold {fold}"
        )
    return stage_seed(
        cfg["seed"], stage, system, mapping=mapping, model=trained["model"], fold=fold
    )


@app.command("backmap-fit")
def backmap_fit(
    references: ReferencesArgument,
    mapping_path: MappingOption,
    fold: FoldOption,
    method: Annotated[str, typer.Option(help="Backmapper name (a registered backmapper).")],
    output_dir: OutputDirOption,
    config: ConfigOption = "{}",
    threads: ThreadsOption = 1,
    structure: Annotated[
        Path | None, typer.Option(help="The reference's prepared structure (energies).")
    ] = None,
) -> None:
    """Fit a backmapper on the fold's training trajectories and score it on the held-out."""
    from cgpipe.backmap import fit

    cfg = load_config(config)
    job = paths.identify(mapping_path, paths.MAPPING_FOLD, paths.MAPPING)
    seed = stage_seed(cfg["seed"], "backmap-fit", job["system"], mapping=job["mapping"], fold=fold)
    fit(
        references,
        mapping_path,
        output_dir,
        fold=fold,
        method=method,
        cfg=cfg,
        seed=derive_seed(seed, method),
        threads=threads,
        structure=structure,
    )


@app.command()
def backmap(
    references: ReferencesArgument,
    simulation: Annotated[Path, typer.Option(help="CG trajectory to backmap.")],
    backmapper: Annotated[Path, typer.Option(help="The fold's fitted backmapper.")],
    fold: FoldOption,
    output_dir: OutputDirOption,
    config: ConfigOption = "{}",
    structure: Annotated[
        Path | None, typer.Option(help="The reference's prepared structure (energies).")
    ] = None,
) -> None:
    """Map a CG trajectory back to all atoms with the backmapper fitted for its fold."""
    from cgpipe.backmap import run

    run(
        simulation,
        backmapper,
        references,
        output_dir,
        fold=fold,
        cfg=load_config(config),
        structure=structure,
    )


@app.command()
def evaluate(
    cg: Annotated[
        list[Path],
        typer.Option(
            "--cg",
            help="CG reference HDF5 (all trajectories): one, or one per fold in order "
            "for a map fitted per fold.",
        ),
    ],
    system: Annotated[str, typer.Option(help="System name.")],
    mapping_name: Annotated[str, typer.Option("--mapping", help="Mapping name.")],
    model: Annotated[str, typer.Option(help="Model name.")],
    train_dir: Annotated[list[Path], typer.Option(help="Per fold, in order: training folder.")],
    simulate_dir: Annotated[list[Path], typer.Option(help="Per fold: simulation folder.")],
    output_dir: OutputDirOption,
    config: ConfigOption = "{}",
    sample_dir: Annotated[
        list[Path] | None,
        typer.Option(help="Per fold: i.i.d. sample folder, for a model that samples i.i.d."),
    ] = None,
    backmap_dir: Annotated[
        list[Path] | None,
        typer.Option(
            help="Per fold: the folder of the model's backmappings (one per backmapper); "
            "none for a model that is not backmapped (backmap.models)."
        ),
    ] = None,
) -> None:
    """Score every fold of one model against the reference with the configured metrics."""
    from cgpipe.evaluate import run

    if len(train_dir) != len(simulate_dir):
        raise typer.BadParameter("give one --train-dir and --simulate-dir per fold")
    if backmap_dir and len(backmap_dir) != len(train_dir):
        raise typer.BadParameter("give one --backmap-dir per fold, or none")
    if sample_dir and len(sample_dir) != len(train_dir):
        raise typer.BadParameter("give one --sample-dir per fold, or none")
    folds = [
        {
            "model": t / paths.MODEL_FILE,
            "traj": s / paths.TRAJECTORY_FILE,
            "health": s / paths.HEALTH_FILE,
        }
        for t, s in zip(train_dir, simulate_dir, strict=True)
    ]
    for fold, folder in zip(folds, backmap_dir or [], strict=False):
        fold["backmap"] = folder
    for fold, folder in zip(folds, sample_dir or [], strict=False):
        fold["samples"] = folder / paths.TRAJECTORY_FILE
    cfg = load_config(config)
    run(cg, folds, output_dir, system=system, mapping=mapping_name, model=model, cfg=cfg)


@app.command()
def report(
    output: Annotated[Path, typer.Option(help="HTML page to write.")],
    metrics: Annotated[list[Path], typer.Option(help="metrics.parquet of each model.")],
    fes: Annotated[list[Path], typer.Option(help="fes.png of each model, same order.")],
    negative_control: Annotated[
        str | None, typer.Option(help="The model run as the negative control.")
    ] = None,
    baseline: Annotated[
        str | None, typer.Option(help="The model every other is compared with.")
    ] = None,
    mapping_scores: Annotated[
        list[Path] | None, typer.Option(help="Scores of each mapping on held-out frames.")
    ] = None,
    fit: Annotated[
        list[Path] | None, typer.Option(help="Fit tables of maps fitted per fold.")
    ] = None,
    backmap_scores: Annotated[
        list[Path] | None,
        typer.Option(help="Held-out scores of each fitted backmapper (every fold)."),
    ] = None,
) -> None:
    """Write the self-contained HTML report."""
    from cgpipe.report import run

    run(
        output,
        metrics,
        fes,
        negative_control=negative_control,
        baseline=baseline,
        mapping_scores=mapping_scores or [],
        fits=fit or [],
        backmap_scores=backmap_scores or [],
    )


@app.command()
def export(
    trajectory: Annotated[Path, typer.Argument(help="A cgpipe trajectory (.h5).")],
    output: Annotated[Path, typer.Argument(help="PDB (.pdb) or DCD (.dcd) to write.")],
    sample: Annotated[
        int | None,
        typer.Option(help="Only this sample of each frame (a backmapped trajectory's)."),
    ] = None,
) -> None:
    """Write a trajectory as PDB (every frame a model) or DCD (with its topology beside it,
    as <output>.pdb); Å at that edge, as those formats want."""
    from cgpipe.io.export import export_trajectory

    export_trajectory(trajectory, output, sample=sample)


ArtifactArgument = Annotated[
    Path, typer.Argument(help="A cgpipe artifact (.h5, .parquet, .pt, .pdb, .png, .html).")
]
RootOption = Annotated[
    Path,
    typer.Option(help="Folder that relative input paths are resolved against (the run's)."),
]


@app.command()
def provenance(
    path: ArtifactArgument,
    root: RootOption = Path("."),
    as_json: Annotated[
        bool, typer.Option("--json", help="The whole lineage as JSON: nodes, then edges.")
    ] = False,
) -> None:
    """Print an artifact's lineage: each record and its inputs' SHA-256, expanded in turn."""
    from rich.console import Console

    from cgpipe.io.lineage import lineage, lineage_tree

    graph = lineage(path, root)
    if as_json:
        print(json.dumps(graph.to_dict(), indent=2))
        return
    console = Console(highlight=False)
    if not console.is_terminal:
        # Piped or redirected: one line per fact, unwrapped, for grep and diff.
        console.width = 1 << 16
    console.print(lineage_tree(graph), crop=False)


@app.command()
def verify(path: ArtifactArgument, root: RootOption = Path(".")) -> None:
    """Re-hash every input along an artifact's lineage; name each that differs or is gone."""
    from cgpipe.io.lineage import lineage
    from cgpipe.io.lineage import verify as verify_lineage

    graph = lineage(path, root)
    result = verify_lineage(graph)
    if result.ok:
        print(f"{path}: the {result.files} files of its lineage match their records")
        return
    for finding in result.findings:
        print(f"cgpipe verify: {finding.describe()}", file=sys.stderr)
    bad = len({finding.path for finding in result.findings})
    # Every input missing is more often the wrong --root than a lost run.
    where = (
        f" (relative paths taken from {graph.root}: see --root)"
        if any(finding.problem == "missing" for finding in result.findings)
        else ""
    )
    print(
        f"cgpipe verify: {path}: {bad} of the {result.files} files of its lineage differ "
        f"from their records or are missing{where}",
        file=sys.stderr,
    )
    raise typer.Exit(EXIT_VERIFY_FAILED)


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
