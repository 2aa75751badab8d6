"""Training throughput: frames per second of cgpipe's training steps against SchNetPack's
SchNet of the same widths on the same CG frames, in one run; one table out.

Systems (as ``simulation_throughput.py`` makes them): alanine dipeptide on the default
``backbone_cb`` map (6 beads; 200 frames of a 10 ps GBn2 run) and a 10-bead chignolin
C-alpha chain (500 random chains of 0.38 nm bonds). The forces trained on are drawn at
random (100 kJ/mol/nm per component): a step's cost does not depend on their values.

Methods, each a full optimisation step (forward, loss, backward, AdamW) on a batch drawn
at random, on one CPU thread (or the GPU where there is one):

- ``cgpipe force matching``: CGSchNet of the default config's size (``models.cgschnet``)
  with its prior, as the train stage trains it (forces by autograd with the graph kept,
  so the loss is differentiated twice);
- ``cgpipe force matching, network only``: the same without the prior, the like of
  SchNetPack's model;
- ``schnetpack force matching``: SchNetPack's ``SchNet`` with the same features,
  filters, interactions, Gaussians and cosine cutoff, ``Atomwise`` energy and
  ``Forces``, over the same bead pairs (every pair of a frame), run by
  ``schnetpack_step.py`` in SchNetPack's own environment (``--schnetpack-env``; made by
  ``--make-env``: a venv with the CPU torch of the project and SchNetPack without its
  pins, which ask for a sympy older than torch's);
- ``cgpipe denoising``: the diffusion model of the default config's size
  (``models.diffusion``), a step of the ``denoising`` trainer (noise embedding, energy
  gradient as the predicted noise: also differentiated twice).

Each case is timed ``--repeats`` times, alternating methods, over ``--steps`` steps after
``--warmup``; the table gives the median frames/s with the range over repeats and the
ratio to SchNetPack's median at the same system and batch.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

sys.path.insert(0, str(Path(__file__).parent))
from simulation_throughput import ALA2, ala2_system, chignolin  # noqa: E402

from cgpipe.config import load_config  # noqa: E402
from cgpipe.device import select_device  # noqa: E402
from cgpipe.models import MODELS, EnergyModel, fit_prior  # noqa: E402
from cgpipe.reference import prepare_structure  # noqa: E402
from cgpipe.train import TRAINERS  # noqa: E402

OUTPUT = Path(__file__).with_suffix(".tsv")
ENV = Path(__file__).resolve().parent.parent / ".bench-envs" / "schnetpack"
WORKER = Path(__file__).with_name("schnetpack_step.py")
TEMPERATURE = 300.0
FORCE_SCALE = 100.0  # kJ/mol/nm


def make_env(env: Path) -> None:
    """SchNetPack's own environment: the project's CPU torch pin, SchNetPack without its
    dependency pins, and the packages it imports."""
    python = env / "bin" / "python"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet"]
    subprocess.run([*pip, "torch==2.13.0"], check=True)
    subprocess.run([*pip, "--no-deps", "schnetpack==2.1.1"], check=True)
    needed = ["ase", "pytorch-lightning", "torchmetrics", "hydra-core", "torch-ema"]
    needed += ["matscipy", "pyyaml", "h5py", "tqdm", "rich", "fasteners", "dirsync", "numpy>=2"]
    subprocess.run([*pip, *needed], check=True)


def time_steps(step: Callable[[torch.Tensor], None], n_frames: int, batch: int, args) -> float:
    """Median seconds per step of ``step(batch_indices)``."""
    generator = torch.Generator().manual_seed(1)
    seconds = []
    for k in range(args.warmup + args.steps):
        indices = torch.randint(n_frames, (batch,), generator=generator)
        start = time.perf_counter()
        step(indices)
        if k >= args.warmup:
            seconds.append(time.perf_counter() - start)
    return statistics.median(seconds)


def force_matching_step(model: EnergyModel, x: torch.Tensor, f: torch.Tensor):
    """The force-matching trainer's optimisation step on a batch of frame indices."""
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)

    def step(batch: torch.Tensor) -> None:
        _, predicted = model.energy_and_forces(x[batch], create_graph=True)
        loss = ((predicted - f[batch]) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def denoising_step(model: EnergyModel, x: torch.Tensor, section: dict):
    """The denoising trainer's optimisation step on a batch of frame indices."""
    from cgpipe.models.diffusion import centred_noise

    trainer = TRAINERS.get("denoising")(**section)
    centred = x - x.mean(dim=1, keepdim=True)
    model.fit_statistics(centred)
    y = centred / model.scale
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(2)

    def step(batch: torch.Tensor) -> None:
        t = torch.randint(1, model.steps + 1, (len(batch),), generator=generator)
        eps = centred_noise((len(batch), model.n_beads, 3), generator, y)
        loss = trainer.loss(model, y[batch], t.to(y.device), eps, create_graph=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def cgpipe_steps(
    cfg: dict, types: list[int], prior, x: torch.Tensor, f: torch.Tensor, device
) -> dict[str, Callable[[], Callable[[torch.Tensor], None]]]:
    """Makers of each cgpipe method's step, each on a freshly seeded model."""

    def build(name: str, with_prior: bool = True) -> EnergyModel:
        torch.manual_seed(0)
        section = cfg["models"][name]
        model = MODELS.get(name).from_config(section, bead_types=types, prior=prior)
        if not with_prior:
            options = {k: v for k, v in section.items() if k != "trainer"}
            model = MODELS.get(name)(types, None, **options)
        return model.to(device)

    return {
        "cgpipe force matching": lambda: force_matching_step(build("cgschnet"), x, f),
        "cgpipe force matching, network only": lambda: force_matching_step(
            build("cgschnet", with_prior=False), x, f
        ),
        "cgpipe denoising": lambda: denoising_step(
            build("diffusion"), x, cfg["trainers"]["denoising"]
        ),
    }


def schnetpack_seconds(
    python: Path, frames: Path, batch: int, widths: dict, args
) -> tuple[float | None, str]:
    """Median seconds per SchNetPack step, or ``None`` and why not."""
    command = [str(python), str(WORKER), str(frames), "--batch", str(batch)]
    command += ["--features", str(widths["hidden_channels"]), "--filters"]
    command += [str(widths["num_filters"]), "--interactions", str(widths["num_interactions"])]
    command += ["--gaussians", str(widths["num_gaussians"]), "--cutoff", str(widths["cutoff"])]
    command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        return None, done.stderr.strip().splitlines()[-1] if done.stderr else "failed"
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return statistics.median(result["seconds"]), f"schnetpack {result['schnetpack']}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--schnetpack-env", type=Path, default=ENV)
    parser.add_argument("--make-env", action="store_true", help="make SchNetPack's environment")
    parser.add_argument("--skip-schnetpack", action="store_true")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    device = select_device(1)
    cfg = load_config(None)
    widths = cfg["models"]["cgschnet"]
    python = args.schnetpack_env / "bin" / "python"
    if args.make_env and not python.exists():
        make_env(args.schnetpack_env)
    schnetpack_note = None
    if args.skip_schnetpack:
        schnetpack_note = "skipped (--skip-schnetpack)"
    elif not python.exists():
        schnetpack_note = f"no environment at {args.schnetpack_env}: run with --make-env"
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        structure = scratch / "ala2.pdb"
        params = {**cfg["reference"], "start_steps": 0}
        prepare_structure(structure, system="ala2", params=params, seed=1, structure=ALA2)
        cpu = torch.device("cpu")
        for system in (ala2_system(structure, "CPU", scratch, cpu), chignolin(cpu)):
            x = system.starts.to(device)
            rng = np.random.default_rng(3)
            f = torch.as_tensor(
                rng.normal(scale=FORCE_SCALE, size=tuple(x.shape)), dtype=torch.float32
            ).to(device)
            types = system.model.hparams["bead_types"]
            frames = scratch / f"{system.name}.npz"
            np.savez(frames, positions=x.cpu().numpy(), forces=f.cpu().numpy(), types=types)
            prior = fit_prior(x.cpu().numpy(), system.bonds, TEMPERATURE, **cfg["train"]["prior"])

            methods = cgpipe_steps(cfg, types, prior, x, f, device)
            for batch in args.batches:
                timings: dict[str, list[float]] = {}
                notes: dict[str, str] = {}
                for _ in range(args.repeats):
                    for method, make in methods.items():
                        seconds = time_steps(make(), len(x), batch, args)
                        timings.setdefault(method, []).append(seconds)
                        notes[method] = f"torch {torch.__version__}, {device.type}"
                    if schnetpack_note is None:
                        seconds, note = schnetpack_seconds(python, frames, batch, widths, args)
                        notes["schnetpack force matching"] = note
                        if seconds is not None:
                            timings.setdefault("schnetpack force matching", []).append(seconds)
                peer = timings.get("schnetpack force matching")
                peer_rate = batch / statistics.median(peer) if peer else float("nan")
                for method, seconds in timings.items():
                    rates = [batch / s for s in seconds]
                    rate = statistics.median(rates)
                    rows.append(
                        {
                            "system": system.name,
                            "beads": system.n_beads,
                            "method": method,
                            "batch": batch,
                            "frames_per_s": round(rate),
                            "range": f"{min(rates):.0f}-{max(rates):.0f}",
                            "ratio_to_schnetpack": round(rate / peer_rate, 2),
                            "device": device.type,
                            "note": notes[method],
                        }
                    )
                    print(rows[-1], flush=True)
                if "schnetpack force matching" not in timings:
                    note = schnetpack_note or notes.get("schnetpack force matching", "")
                    rows.append(
                        {
                            "system": system.name,
                            "method": "schnetpack force matching",
                            "batch": batch,
                            "note": note,
                        }
                    )
    table = pd.DataFrame(rows)
    table.to_csv(args.output, sep="\t", index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
