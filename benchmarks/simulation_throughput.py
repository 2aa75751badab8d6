"""Aggregate CG simulation throughput against OpenMM all-atom stepping of the same molecule.

Alanine dipeptide as the reference stage builds it (openmmtools' structure through
:func:`cgpipe.reference.prepare_structure`; amber14-all, GBn2 implicit solvent, 2 fs,
HBonds, 300 K), both sides on one device kind: on a CPU one thread each
(``torch.set_num_threads(1)``, OpenMM's CPU platform with ``Threads=1``); where
``torch.cuda.is_available()``, CUDA against OpenMM's fastest platform (CUDA).

- ``openmm``: ``Simulation.step`` of the all-atom system, after minimisation and 500
  steps, timed over ``--openmm-steps`` (``raw_ns_per_day`` of
  ``benchmarks/reference_throughput.py``).
- ``cgpipe baoab``: a CGSchNet of the default config's size (``models.cgschnet``),
  untrained, built as the train stage builds it (``from_config`` with a prior fitted by
  :func:`cgpipe.models.fit_prior` with ``train.prior``'s options to 200 frames of a 10 ps
  GBn2 run mapped to the default ``backbone_cb`` map, 6 beads), in ``eval()`` with
  frozen parameters as the simulate stage runs it, stepped by the registered ``baoab``
  integrator built as the simulate stage builds it (bead masses, the ``simulate``
  section's 2 fs and friction 1/ps): ``state = integrator.start(x, kT)``, then ``state =
  integrator.step(state)``; 1, 64, 1024 and 8192 replicas (and 65536 on a GPU), started
  from those frames. Forces (``--forces``): ``eager`` (``model.energy_and_forces``) and
  ``compiled`` (:func:`cgpipe.simulate.compiled.energy_and_forces`, torch.compile with
  a dynamic batch; compiled once per model before any timing, and its recompilation for
  one replica falls in the warm-up) with the exact filter network, and ``tabulated``
  (SchNet's filters from a table of r, ``simulate.filter_table``, then compiled: the
  stage's default), on a copy of the model. Only the steps
  are timed, not the stage's saves and health checks (every 50 steps).
- ``torchmd Langevin``: the same model and replicas under torchmd's integrator
  (``torchmd.integrator.Integrator``: velocity Verlet with a Langevin kick; Å, fs,
  kcal/mol) at the same time step, friction and temperature, its forces from
  :class:`TorchMDForces`, which converts units around the same force function (the
  stage's default, tabulated and compiled, where it is timed). torchmd's own ``Forces`` class is not
  used: it loops over replicas in Python. Where torchmd is not importable the table says
  so (``pip install torchmd``: it needs only torch, pyyaml and tqdm).
- step cost (``baoab``, eager and compiled): a 10-bead chignolin C-alpha CGSchNet at 64
  replicas (default size, prior fitted to random chains of 0.38 nm bonds), and a
  protein-sized network of 269 beads (128 features, 3 interactions, 50 Gaussians,
  1.5 nm cutoff, no prior) on random chains packed at a globular protein's density, at
  16 and 64 replicas (``--protein-replicas``).

On a CPU the process's address space is capped (``--memory-limit-gb``, default 80 % of
the memory available at the start): a case too large for the machine fails with an
allocation error, and its row says so, instead of calling the kernel's OOM killer onto a
shared machine.

Steps: ``--steps`` up to 64 replicas, ``--steps * 64 / replicas`` above (at least
``--min-steps``; the work per timing stays about the same), ``--protein-steps`` for the
269-bead network, each after a tenth as many untimed warm-up steps (at least one). The
aggregate ns/day is replicas * steps * 2 fs / seconds. OpenMM and every CG case run in
turn ``--repeats`` times; the table gives medians and every run, and the ratio CG /
OpenMM repeat by repeat (median and runs). ``stable`` is the fraction of replicas that
the simulate stage's health check (:class:`cgpipe.simulate.Health`, limits from the
start frames) passes after the timed steps (the lowest over repeats).

Run: ``python benchmarks/simulation_throughput.py`` (or ``make benchmark``; about 15
minutes on 2 cores, most of it the 269-bead network); a short run: ``--replicas 1 64
--steps 100 --repeats 1 --skip-torchmd --skip-step-cost``. ``--profile --steps 200
--skip-step-cost`` prints instead where a step's time goes at 1 and 64 replicas, eager
and compiled (the force call, the prior alone, and torch.profiler's top operators). The
table goes to ``benchmarks/simulation_throughput.tsv`` and stdout. A benchmark, not a
test: nothing asserts a time.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import math
import re
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

# A sibling script: run as ``python benchmarks/simulation_throughput.py``, benchmarks/ is on
# sys.path, and the OpenMM side is timed exactly as reference_throughput.py times it.
from reference_throughput import raw_ns_per_day

from cgpipe.config import load_config
from cgpipe.device import select_device
from cgpipe.io import read_trajectory
from cgpipe.mapping import MAPPINGS
from cgpipe.models import MODELS, EnergyModel, fit_prior
from cgpipe.reference import choose_platform, generate_trajectory, prepare_structure
from cgpipe.reference.structure import load_structure
from cgpipe.simulate import INTEGRATORS, EnergyAndForces, Health
from cgpipe.simulate.compiled import energy_and_forces
from cgpipe.simulate.health import HEALTHY
from cgpipe.units import thermal_energy

ALA2 = "openmmtools:data/alanine-dipeptide-gbsa/alanine-dipeptide.pdb"
CHIGNOLIN = "GYDPETGTWG"
OUTPUT = Path(__file__).with_suffix(".tsv")
TEMPERATURE = 300.0  # K
BOND = 0.38  # nm, C-alpha to C-alpha (trans peptide)
BOND_SPREAD = 0.005  # nm, standard deviation of the chains' bond lengths
RESIDUE_MASS = 110.0  # amu, a mean residue: masses only scale the noise, not the cost
PROTEIN_BEADS = 269
PROTEIN_NETWORK = {
    "hidden_channels": 128,
    "num_filters": 128,
    "num_interactions": 3,
    "num_gaussians": 50,
    "cutoff": 1.5,
}
STEP_COST_REPLICAS = 64
COLUMNS = [
    "system",
    "integrator",
    "forces",
    "device",
    "beads",
    "features",
    "interactions",
    "gaussians",
    "cutoff_nm",
    "prior",
    "replicas",
    "steps",
    "ms_per_step",
    "ns_per_day",
    "ns_per_day_runs",
    "ratio",
    "ratio_runs",
    "stable",
    "note",
]
NM_PER_ANGSTROM = 0.1
KJ_PER_KCAL = 4.184


@dataclasses.dataclass
class CGSystem:
    """One CG force field to time: the model, its bead masses and a pool of start frames."""

    name: str
    model: EnergyModel
    masses: torch.Tensor  # [n_beads], amu
    starts: torch.Tensor  # [n_frames, n_beads, 3], nm
    bonds: np.ndarray  # [n_bonds, 2]
    note: str = ""
    tabulated: bool = False  # whether the "tabulated" forces got their table

    def __post_init__(self) -> None:
        simulate = load_config(None)["simulate"]
        self.health = Health.for_run(self.starts.cpu().numpy(), self.bonds, simulate).to(
            self.starts.device
        )
        self.forces: dict[str, EnergyAndForces] = {"eager": self.model.energy_and_forces}

    def compile(self, n_replicas: int = 64) -> float:
        """Add the simulate stage's compiled forces (``simulate.compile``) as ``"compiled"``,
        checked against eager on ``n_replicas`` start frames; returns the seconds it took.
        Where the stage would fall back to eager (it logs why), so does ``"compiled"``."""
        start = time.perf_counter()
        self.forces["compiled"] = energy_and_forces(
            self.model, self.start_positions(n_replicas, seed=0), compile=True
        )
        return time.perf_counter() - start

    def tabulate(self, n_replicas: int = 64) -> float:
        """Add the simulate stage's default forces as ``"tabulated"``: SchNet filters from a
        table (``simulate.filter_table``), then compiled, each checked as the stage checks
        them, on a copy of the model (the other modes keep the exact filters); returns the
        seconds it took."""
        start = time.perf_counter()
        model = copy.deepcopy(self.model)
        self.forces["tabulated"] = energy_and_forces(
            model,
            self.start_positions(n_replicas, seed=0),
            compile=True,
            filter_table=load_config(None)["simulate"]["filter_table"],
        )
        self.tabulated = any(
            getattr(module, "filter_table", None) is not None for module in model.modules()
        )
        return time.perf_counter() - start

    def forces_label(self, mode: str) -> str:
        forces = self.forces[mode]
        if mode != "eager" and getattr(forces, "__self__", None) is not None:
            return f"{mode} (compilation failed)"  # a bound energy_and_forces: eager
        if mode == "tabulated" and not self.tabulated:
            return "tabulated (table refused)"
        return mode

    @property
    def n_beads(self) -> int:
        return self.model.n_beads

    def describe(self) -> dict[str, Any]:
        hparams = self.model.hparams
        return {
            "beads": self.n_beads,
            "features": hparams["hidden_channels"],
            "interactions": hparams["num_interactions"],
            "gaussians": hparams["num_gaussians"],
            "cutoff_nm": hparams["cutoff"],
            "prior": hparams["prior"] is not None,
        }

    def start_positions(self, n_replicas: int, seed: int) -> torch.Tensor:
        """[n_replicas, n_beads, 3] start frames drawn with replacement from the pool."""
        pick = torch.randint(
            len(self.starts), (n_replicas,), generator=torch.Generator().manual_seed(seed)
        )
        return self.starts[pick].clone()

    def stable_fraction(self, positions: torch.Tensor) -> float:
        """Fraction of replicas at ``positions`` [n_replicas, n_beads, 3] (nm) that the
        simulate stage's health check passes (limits from the start frames)."""
        codes, _ = self.health.check(
            positions, self.health.counters(len(positions), positions.device)
        )
        return float((codes == HEALTHY).float().mean())


def frozen(model: EnergyModel, device: torch.device) -> EnergyModel:
    """The model as the simulate stage runs it: eval mode, no parameter gradients."""
    model = model.to(device).eval()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    return model


def ala2_system(structure: Path, platform: str, scratch: Path, device: torch.device) -> CGSystem:
    """The default CGSchNet on backbone_cb, its prior fitted to 200 frames of a 10 ps GBn2
    run (every 50 fs, after 2 ps), as the train stage fits and builds it."""
    cfg = load_config(None)
    params = {
        **cfg["reference"],
        "n_steps": 5000,
        "save_every": 25,
        "equilibration_steps": 1000,
        "start_steps": 0,
    }
    path = scratch / "ala2_frames.h5"
    generate_trajectory(
        structure,
        path,
        system="ala2",
        index=0,
        temperature=TEMPERATURE,
        params=params,
        master_seed=1,
        threads=1,
        platform_name=platform,
    )
    data = read_trajectory(path)
    mapping = MAPPINGS.get("backbone_cb")().build(data.topology, None)
    cg = np.einsum("ba,fax->fbx", mapping.coordinate_map, data.coordinates)
    prior = fit_prior(cg, mapping.bonds, TEMPERATURE, **cfg["train"]["prior"])
    torch.manual_seed(0)
    model = MODELS.get("cgschnet").from_config(
        cfg["models"]["cgschnet"], bead_types=mapping.bead_types.tolist(), prior=prior
    )
    return CGSystem(
        "ala2",
        frozen(model, device),
        torch.as_tensor(np.array(mapping.bead_masses), dtype=torch.float32, device=device),
        torch.as_tensor(cg, dtype=torch.float32, device=device),
        mapping.bonds,
        "untrained; prior fitted to 200 frames of 10 ps GBn2",
    )


def random_chain(
    n_beads: int, rng: np.random.Generator, radius: float | None = None, tries: int = 200
) -> np.ndarray:
    """[n_beads, 3] (nm) a self-avoiding chain of 0.38 +- 0.005 nm bonds and 80-150 degree
    bond angles, no two beads closer than 0.4 nm, inside a sphere of ``radius`` (nm) about
    the first bead where given."""
    while True:
        chain = [np.zeros(3)]
        for _ in range(1, n_beads):
            for _ in range(tries):
                step = rng.normal(size=3)
                step /= np.linalg.norm(step)
                if len(chain) > 1:
                    previous = chain[-1] - chain[-2]
                    # The bond angle is 180 degrees less the turn between bonds.
                    turn = float(previous @ step) / np.linalg.norm(previous)
                    if not math.cos(math.radians(100)) <= turn <= math.cos(math.radians(30)):
                        continue
                new = chain[-1] + rng.normal(BOND, BOND_SPREAD) * step
                if radius is not None and np.linalg.norm(new) > radius:
                    continue
                if (
                    len(chain) > 1
                    and np.linalg.norm(np.array(chain[:-1]) - new, axis=1).min() < 0.4
                ):
                    continue
                chain.append(new)
                break
            else:
                break  # trapped: start the chain again
        if len(chain) == n_beads:
            return np.array(chain)


def chignolin(device: torch.device, n_frames: int = 500) -> CGSystem:
    """A 10-bead C-alpha CGSchNet of the default size, its prior fitted to random chains."""
    cfg = load_config(None)
    rng = np.random.default_rng(10)
    frames = np.stack([random_chain(len(CHIGNOLIN), rng) for _ in range(n_frames)])
    bonds = np.array([(i, i + 1) for i in range(len(CHIGNOLIN) - 1)])
    prior = fit_prior(frames, bonds, TEMPERATURE, **cfg["train"]["prior"])
    residues = sorted(set(CHIGNOLIN))
    torch.manual_seed(0)
    model = MODELS.get("cgschnet").from_config(
        cfg["models"]["cgschnet"],
        bead_types=[residues.index(r) for r in CHIGNOLIN],
        prior=prior,
    )
    return CGSystem(
        "chignolin_ca",
        frozen(model, device),
        torch.full((len(CHIGNOLIN),), RESIDUE_MASS, device=device),
        torch.as_tensor(frames, dtype=torch.float32, device=device),
        bonds,
        f"untrained; prior fitted to {n_frames} random chains",
    )


def protein(device: torch.device, n_frames: int = 16) -> CGSystem:
    """A protein-sized SchNet of 269 beads without a prior, on random compact chains.

    A globular protein of N residues has Rg ~ 0.22 N^0.38 nm (1.84 nm at 269), a sphere of
    radius sqrt(5/3) Rg: 2.4 nm, so the chains fill a 2.5 nm sphere, which sets how many
    neighbours a bead has within the cutoff.
    """
    rng = np.random.default_rng(269)
    frames = np.stack([random_chain(PROTEIN_BEADS, rng, radius=2.5) for _ in range(n_frames)])
    # The network has no bonded terms; the chain's bonds are what the health check reads.
    bonds = np.array([(i, i + 1) for i in range(PROTEIN_BEADS - 1)])
    torch.manual_seed(0)
    model = MODELS.get("cgschnet")(
        bead_types=rng.integers(0, 20, PROTEIN_BEADS).tolist(), prior=None, **PROTEIN_NETWORK
    )
    return CGSystem(
        "protein_269",
        frozen(model, device),
        torch.full((PROTEIN_BEADS,), RESIDUE_MASS, device=device),
        torch.as_tensor(frames, dtype=torch.float32, device=device),
        bonds,
        f"untrained, no prior; {n_frames} random chains in a 2.5 nm sphere",
    )


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_baoab(
    system: CGSystem, forces: str, n_replicas: int, steps: int, device: torch.device, seed: int
) -> tuple[float, float]:
    """(seconds of ``steps`` timed steps after ``steps // 10`` warm-up ones, stable
    fraction) of the registered ``baoab`` integrator on ``n_replicas`` replicas, built as
    the simulate stage builds it, with the system's ``forces`` (``"eager"`` or
    ``"compiled"``)."""
    simulate = load_config(None)["simulate"]
    integrator = INTEGRATORS.get("baoab")(
        system.forces[forces],
        system.masses,
        simulate["timestep"],
        torch.Generator(device=device).manual_seed(seed),
        **simulate["baoab"],
    )
    kT = torch.full((n_replicas,), thermal_energy(TEMPERATURE), device=device)
    state = integrator.start(system.start_positions(n_replicas, seed), kT)
    for _ in range(max(1, steps // 10)):
        state = integrator.step(state)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        state = integrator.step(state)
    synchronize(device)
    return time.perf_counter() - start, system.stable_fraction(state.positions)


class TorchMDForces:
    """torchmd's force-object interface (``compute(pos, box, forces)``, what
    ``torchmd.integrator.Integrator`` calls) around a cgpipe energy-and-forces function:
    positions in Å and forces in kcal/mol/Å outside, nm and kJ/mol inside."""

    def __init__(self, energy_and_forces: EnergyAndForces) -> None:
        self.energy_and_forces = energy_and_forces

    def compute(self, pos: torch.Tensor, box: torch.Tensor, forces: torch.Tensor) -> torch.Tensor:
        """Writes the forces [n_replicas, n_beads, 3] (kcal/mol/Å) at ``pos`` (Å) into
        ``forces``; returns the energies [n_replicas] (kcal/mol). ``box`` is unused (no
        periodic boundaries)."""
        energy, force = self.energy_and_forces(pos * NM_PER_ANGSTROM)
        forces.copy_(force * (NM_PER_ANGSTROM / KJ_PER_KCAL))
        return energy.detach() / KJ_PER_KCAL


def torchmd_unavailable() -> str | None:
    """Why torchmd cannot be used here, or ``None`` where it can."""
    try:
        import torchmd.integrator  # noqa: F401
        import torchmd.systems  # noqa: F401
    except ImportError as error:
        return f"torchmd is not importable ({error}): pip install torchmd"
    return None


def torchmd_version() -> str:
    from importlib.metadata import version

    return version("torchmd")


def time_torchmd(
    system: CGSystem, forces: str, n_replicas: int, steps: int, device: torch.device, seed: int
) -> tuple[float, float]:
    """As :func:`time_baoab`, under torchmd's Langevin integrator at the same time step,
    friction and temperature, with its own Maxwell-Boltzmann velocities."""
    from torchmd.integrator import Integrator, maxwell_boltzmann
    from torchmd.systems import System

    simulate = load_config(None)["simulate"]
    torch.manual_seed(seed)
    md = System(system.n_beads, n_replicas, torch.float32, device)
    md.set_masses(system.masses)
    # torchmd takes positions as [n_atoms, 3, n_replicas].
    md.set_positions((system.start_positions(n_replicas, seed) / NM_PER_ANGSTROM).permute(1, 2, 0))
    md.set_velocities(maxwell_boltzmann(md.masses, TEMPERATURE, n_replicas))
    force_object = TorchMDForces(system.forces[forces])
    force_object.compute(md.pos, md.box, md.forces)
    integrator = Integrator(
        md,
        force_object,
        simulate["timestep"] * 1000.0,  # fs
        device,
        gamma=simulate["baoab"]["friction"],  # 1/ps
        T=TEMPERATURE,
    )
    integrator.step(niter=max(1, steps // 10))
    synchronize(device)
    start = time.perf_counter()
    integrator.step(niter=steps)
    synchronize(device)
    return time.perf_counter() - start, system.stable_fraction(md.pos * NM_PER_ANGSTROM)


@dataclasses.dataclass
class Case:
    """One timed CG configuration and its runs."""

    system: CGSystem
    integrator: str  # "cgpipe baoab" or "torchmd Langevin"
    forces: str  # "eager" or "compiled"
    n_replicas: int
    steps: int
    seconds: list[float] = dataclasses.field(default_factory=list)
    stable: list[float] = dataclasses.field(default_factory=list)
    failure: str = ""  # why it could not run (then it is not tried again)

    def run(self, device: torch.device, seed: int) -> None:
        if self.failure:
            return
        timer = time_torchmd if self.integrator.startswith("torchmd") else time_baoab
        try:
            seconds, stable = timer(
                self.system, self.forces, self.n_replicas, self.steps, device, seed
            )
        except (MemoryError, RuntimeError) as error:
            out_of_memory = isinstance(error, (MemoryError, torch.OutOfMemoryError))
            if not out_of_memory and "allocate memory" not in str(error):
                raise
            wanted = re.search(r"allocate (\d+) bytes", str(error))
            self.failure = "out of memory" + (
                f" (an allocation of {int(wanted.group(1)) / 2**30:.1f} GiB failed)"
                if wanted
                else ""
            )
            return
        self.seconds.append(seconds)
        self.stable.append(stable)

    def ns_per_day(self) -> list[float]:
        """Aggregate ns/day of every run."""
        timestep = load_config(None)["simulate"]["timestep"]
        return [ns_per_day(self.n_replicas, self.steps, s, timestep) for s in self.seconds]

    def __str__(self) -> str:
        if self.failure:
            return f"{self.system.name} {self.integrator} {self.forces}: {self.failure}"
        return (
            f"{self.system.name} {self.integrator} {self.forces} {self.n_replicas} replicas x "
            f"{self.steps} steps: {1e3 * self.seconds[-1] / self.steps:.2f} ms/step, "
            f"{self.ns_per_day()[-1]:.1f} ns/day"
        )


def cap_memory(limit_gb: float | None) -> None:
    """Cap this process's address space at ``limit_gb`` GiB (default: 80 % of
    MemAvailable), so that a case too large for the machine fails with an allocation
    error, which its row reports, rather than waking the kernel's OOM killer on a shared
    machine."""
    if limit_gb is None:
        with open("/proc/meminfo") as meminfo:
            fields = dict(line.split(":", 1) for line in meminfo)
        limit = int(0.8 * int(fields["MemAvailable"].split()[0]) * 1024)
    else:
        limit = int(limit_gb * 2**30)
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def steps_for(n_replicas: int, args: argparse.Namespace) -> int:
    """Steps timed at ``n_replicas``: ``--steps`` up to 64 replicas, inversely fewer above."""
    return max(args.min_steps, round(args.steps * min(1.0, 64 / n_replicas)))


def ns_per_day(n_replicas: int, steps: int, seconds: float, timestep: float) -> float:
    """Aggregate ns/day of ``n_replicas`` replicas each ``steps`` steps of ``timestep`` ps."""
    return n_replicas * steps * timestep * 1e-3 / seconds * 86400.0


def runs(values: list[float], digits: int = 1) -> str:
    return " ".join(f"{value:.{digits}f}" for value in values)


def seconds_per_call(
    function: Callable[[torch.Tensor], Any], positions: torch.Tensor, calls: int
) -> float:
    """Seconds per call of ``function(positions)`` over ``calls`` calls, after one untimed
    call."""
    device = positions.device
    function(positions)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(calls):
        function(positions)
    synchronize(device)
    return (time.perf_counter() - start) / calls


def profile(system: CGSystem, device: torch.device, steps: int) -> None:
    """Print where a step's time goes at 1 and 64 replicas, eager and compiled: ms per
    step, per energy-and-forces call of the model and of its prior alone (eager); and
    torch.profiler's top operators (self CPU time) of ``steps`` baoab steps."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    prior = frozen(system.model.prior_model(), device)
    for forces in system.forces:
        for n_replicas in (1, 64):
            x = system.start_positions(n_replicas, seed=0)
            step, _ = time_baoab(system, forces, n_replicas, steps, device, seed=0)
            model = seconds_per_call(system.forces[forces], x, steps)
            alone = seconds_per_call(prior.energy_and_forces, x, steps)
            print(
                f"\n{system.name}, {forces}, {n_replicas} replicas: {1e3 * step / steps:.3f} ms "
                f"per baoab step, {1e3 * model:.3f} ms per energy-and-forces call, "
                f"{1e3 * alone:.3f} ms of the prior alone (eager)"
            )
            with torch_profile(activities=activities) as profiler:
                time_baoab(system, forces, n_replicas, steps, device, seed=0)
            print(profiler.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--replicas",
        type=int,
        nargs="+",
        default=None,
        help="ala2 replica counts (default 1 64 1024 8192, and 65536 on a GPU)",
    )
    parser.add_argument(
        "--steps",
        type=int,
        default=1000,
        help="timed CG steps up to 64 replicas; fewer in proportion above",
    )
    parser.add_argument("--min-steps", type=int, default=20, help="fewest timed CG steps")
    parser.add_argument(
        "--protein-steps", type=int, default=1, help="timed steps of the 269-bead network"
    )
    parser.add_argument(
        "--protein-replicas",
        type=int,
        nargs="+",
        default=[16, 64],
        help="replica counts of the 269-bead network",
    )
    parser.add_argument(
        "--memory-limit-gb",
        type=float,
        default=None,
        help="address-space cap on a CPU, so that a case too big fails alone and says so "
        "(default: 80 %% of the memory available at the start)",
    )
    parser.add_argument("--openmm-steps", type=int, default=20000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--forces",
        nargs="+",
        choices=["eager", "compiled", "tabulated"],
        default=["eager", "compiled", "tabulated"],
        help="the model's forces: eager; compiled; and tabulated filters, compiled (the "
        "simulate stage's default)",
    )
    parser.add_argument("--skip-torchmd", action="store_true")
    parser.add_argument(
        "--skip-step-cost", action="store_true", help="no chignolin and 269-bead rows"
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print where a step's time goes at 1 and 64 replicas (--steps steps), no table",
    )
    parser.add_argument("--output", type=Path, default=OUTPUT)
    args = parser.parse_args()

    began = time.perf_counter()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    device = select_device(1)  # CUDA where present; one CPU thread either way
    if device.type == "cpu":  # (a CUDA context reserves far more address space)
        cap_memory(args.memory_limit_gb)
    platform = choose_platform(None).getName() if device.type == "cuda" else "CPU"
    replicas = args.replicas or [1, 64, 1024, 8192] + ([65536] if device.type == "cuda" else [])
    timestep = load_config(None)["simulate"]["timestep"]
    params = load_config(None)["reference"]
    params.update(n_steps=args.openmm_steps, equilibration_steps=500, start_steps=0)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        structure = scratch / "ala2.pdb"
        prepare_structure(structure, system="ala2", params=params, seed=1, structure=ALA2)
        atoms = load_structure(structure)[0].getNumAtoms()
        ala2 = ala2_system(structure, platform, scratch, device)
        systems = [ala2] if args.skip_step_cost else [ala2, chignolin(device), protein(device)]
        for system in systems:
            example = min(args.protein_replicas) if system.name == "protein_269" else 64
            if "compiled" in args.forces:
                print(f"{system.name}: compiled in {system.compile(example):.0f} s", flush=True)
            if "tabulated" in args.forces:
                seconds = system.tabulate(example)
                print(f"{system.name}: tabulated and compiled in {seconds:.0f} s", flush=True)
        if args.profile:
            profile(ala2, device, args.steps)
            return
        torchmd_note = "skipped (--skip-torchmd)" if args.skip_torchmd else torchmd_unavailable()
        # torchmd runs on the forces the simulate stage uses (tabulated and compiled by default).
        torchmd_forces = next(f for f in ("tabulated", "compiled", "eager") if f in args.forces)

        cases: list[Case] = []
        for n in replicas:
            for forces in args.forces:
                cases.append(Case(ala2, "cgpipe baoab", forces, n, steps_for(n, args)))
            if torchmd_note is None:
                cases.append(Case(ala2, "torchmd Langevin", torchmd_forces, n, steps_for(n, args)))
        for system in systems[1:]:
            protein_network = system.name == "protein_269"
            steps = args.protein_steps if protein_network else args.steps
            for n in args.protein_replicas if protein_network else [STEP_COST_REPLICAS]:
                for forces in args.forces:
                    cases.append(Case(system, "cgpipe baoab", forces, n, steps))

        openmm: list[float] = []
        for repeat in range(args.repeats):
            openmm.append(raw_ns_per_day(structure, params, platform, threads=1))
            print(f"repeat {repeat}: openmm {openmm[-1]:.1f} ns/day", flush=True)
            for case in cases:
                case.run(device, seed=repeat)
                print(f"repeat {repeat}: {case}", flush=True)

    openmm_median = statistics.median(openmm)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    memory_note = (
        f"address space capped at {soft / 2**30:.1f} GiB" if soft != resource.RLIM_INFINITY else ""
    )
    rows = [
        {
            "system": "ala2",
            "integrator": f"openmm LangevinMiddle ({platform})",
            "beads": atoms,
            "replicas": 1,
            "steps": args.openmm_steps,
            "ms_per_step": round(1e3 * timestep * 1e-3 * 86400.0 / openmm_median, 4),
            "ns_per_day": round(openmm_median, 1),
            "ns_per_day_runs": runs(openmm),
            "ratio_runs": "",
            "stable": math.nan,
            "note": "all-atom, amber14-all + GBn2, 2 fs, HBonds",
        }
    ]
    for case in cases:
        if case.failure:
            rows.append(
                {
                    "system": case.system.name,
                    "integrator": case.integrator,
                    "forces": case.forces,
                    **case.system.describe(),
                    "replicas": case.n_replicas,
                    "steps": case.steps,
                    "note": f"{case.failure}; {memory_note}",
                }
            )
            continue
        rates = case.ns_per_day()
        row: dict[str, Any] = {
            "system": case.system.name,
            "integrator": case.integrator,
            "forces": case.system.forces_label(case.forces),
            **case.system.describe(),
            "replicas": case.n_replicas,
            "steps": case.steps,
            "ms_per_step": round(1e3 * statistics.median(case.seconds) / case.steps, 3),
            "ns_per_day": round(statistics.median(rates), 1),
            "ns_per_day_runs": runs(rates),
            "stable": min(case.stable),
            "note": case.system.note,
        }
        if case.integrator.startswith("torchmd"):
            row["note"] = f"torchmd {torchmd_version()}, forces by TorchMDForces; {row['note']}"
        if case.system is ala2:
            ratios = [rate / reference for rate, reference in zip(rates, openmm, strict=True)]
            row.update(ratio=round(statistics.median(ratios), 3), ratio_runs=runs(ratios, 3))
        rows.append(row)
    if torchmd_note is not None:
        rows.append({"system": "ala2", "integrator": "torchmd Langevin", "note": torchmd_note})
    table = pd.DataFrame(rows).reindex(columns=COLUMNS)
    for column in ("beads", "features", "interactions", "gaussians", "replicas", "steps"):
        table[column] = table[column].astype("Int64")
    table["prior"] = table["prior"].map({True: "yes", False: "no"})
    table["device"] = (
        "cpu, 1 thread" if device.type == "cpu" else f"cuda, {torch.cuda.get_device_name(device)}"
    )
    table.to_csv(args.output, sep="\t", index=False)
    print(table.to_markdown(index=False))
    print(f"\nwritten to {args.output} in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
