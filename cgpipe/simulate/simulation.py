"""A batch of CG replicas that owns its state and survives a kill.

:class:`Simulation` holds the state (positions, velocities, forces, energies, each
replica's kT, the step count, the random-number state, the health counters and every
replica's failure), advances it with a registered integrator, and records in blocks of
``checkpoint_interval`` steps:

- within a block nothing waits for the host: frames and health codes of every save go to
  buffers on the device;
- at the end of a block the model's Verlet lists are checked for overflow (a block that
  overflowed runs again from its start, the lists grown), the frames go to the
  checkpoint folder, failed replicas are removed from the batch (they cost nothing after
  that), and the state to resume from is written atomically;
- a killed job run again resumes after the last complete block and, on the same device
  with the same seed, produces the same trajectory bit for bit.

The trajectory is assembled at the end, replica by replica, from memory-mapped blocks,
so that a long run never holds its frames in memory.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import sys
import time
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from cgpipe.io import TrajectoryWriter
from cgpipe.io.blocks import Blocks
from cgpipe.models.neighbours import NeighbourList, NeighbourListOverflow
from cgpipe.simulate.base import Integrator, State
from cgpipe.simulate.graphs import DYNAMIC, SaveUnit, StaticSave, build_save
from cgpipe.simulate.health import HEALTHY, REASONS, Health

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What became of each replica of a finished run.

    Attributes
    ----------
    failed_save
        [n_replicas] the save (0-based) at which each replica was found failed; -1 for a
        replica that ran to the end.
    reasons
        [n_replicas] ``""`` or the failure reason (:data:`cgpipe.simulate.health.REASONS`).
    n_frames
        [n_replicas] frames each replica saved.
    seconds
        Wall time spent stepping (excluding assembly), summed over restarts.
    restarts
        How many times the run was resumed from a checkpoint.
    """

    failed_save: np.ndarray
    reasons: list[str]
    n_frames: np.ndarray
    seconds: float
    restarts: int

    @property
    def stable(self) -> np.ndarray:
        """[n_replicas] whether each replica ran to the end."""
        return self.failed_save < 0


class Simulation:
    """Replicas of one CG system under an integrator, checked and recorded in blocks.

    Parameters
    ----------
    integrator
        A registered integrator (its generator is the run's random-number state).
    state
        The start state (:meth:`Integrator.start`).
    health
        The checks every save (on the state's device).
    save_every
        Steps between saved frames (and health checks).
    checkpoint_interval
        Steps per block (rounded to whole saves, at least one).
    cuda_graph
        On CUDA, capture each block's save as a CUDA graph (where the integrator and the
        model allow; else eager, the reason logged).
    neighbour_lists
        The model's neighbour lists (:func:`cgpipe.models.neighbours.neighbour_lists`),
        checked for overflow at the end of every block.
    """

    def __init__(
        self,
        integrator: Integrator,
        state: State,
        health: Health,
        *,
        save_every: int,
        checkpoint_interval: int,
        cuda_graph: bool = True,
        neighbour_lists: Sequence[NeighbourList] = (),
    ) -> None:
        self.integrator = integrator
        self.neighbour_lists = list(neighbour_lists)
        self.cuda_graph = cuda_graph
        self.static_buffers = False
        self.state = state
        self.health = health
        self.save_every = int(save_every)
        self.saves_per_block = max(1, int(checkpoint_interval) // self.save_every)
        self.rungs = integrator.rungs
        if state.n_total % self.rungs:
            raise ValueError(f"{state.n_total} rows are not replicas of {self.rungs} rungs")
        self.n_replicas = state.n_total // self.rungs
        device = state.positions.device
        self.outside = health.counters(len(state.replicas), device)
        self.failed_code = torch.zeros(self.n_replicas, dtype=torch.int8, device=device)
        self.failed_save = torch.full((self.n_replicas,), -1, dtype=torch.long, device=device)
        self.n_saved = 0
        self.n_blocks = 0

    @property
    def n_beads(self) -> int:
        return self.state.positions.shape[1]

    @property
    def replicas(self) -> torch.Tensor:
        """[n_batch_replicas] the replicas in the batch (each ``rungs`` rows, in order)."""
        return self.state.replicas[:: self.rungs] // self.rungs

    # --- checkpoints ---------------------------------------------------------------------
    def state_bytes(self) -> bytes:
        """Everything a resumed run needs, serialised (torch tensors, no pickled objects)."""
        generator = self.integrator.generator
        saved = {
            "state": self.state.to_dict(),
            "outside": self.outside.cpu(),
            "failed_code": self.failed_code.cpu(),
            "failed_save": self.failed_save.cpu(),
            "n_saved": self.n_saved,
            "n_blocks": self.n_blocks,
            "generator": generator.get_state() if generator is not None else None,
            "integrator": self.integrator.state_dict(),
        }
        buffer = io.BytesIO()
        torch.save(saved, buffer)
        return buffer.getvalue()

    def load_state_bytes(self, data: bytes) -> None:
        """Restore what :meth:`state_bytes` wrote."""
        device = self.state.positions.device
        saved = torch.load(io.BytesIO(data), weights_only=True)
        self.state = State.from_dict(saved["state"], device)
        self.outside = saved["outside"].to(device)
        self.failed_code = saved["failed_code"].to(device)
        self.failed_save = saved["failed_save"].to(device)
        self.n_saved = int(saved["n_saved"])
        self.n_blocks = int(saved["n_blocks"])
        if saved["generator"] is not None and self.integrator.generator is not None:
            self.integrator.generator.set_state(saved["generator"])
        self.integrator.load_state_dict(saved["integrator"])

    # --- running -------------------------------------------------------------------------
    def advance(self, n_saves: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Run ``n_saves`` saves of the batch with no host synchronisation (failed
        replicas stay in the batch, unsaved, until :meth:`compact`).

        A replica of several rungs (parallel tempering) has failed when any of its rows
        has (with the reason of the first, by rung); its saved frame is its first rung's,
        the one at the target temperature.

        Returns
        -------
        frames, kept
            [n_saves, n_batch_replicas, n_beads, 3] positions and [n_saves,
            n_batch_replicas] whether each replica was still healthy at each save, on the
            device.
        """
        state = self.state
        positions = state.positions
        n_batch, rungs = len(state.replicas) // self.rungs, self.rungs
        frames = torch.empty(
            (n_saves, n_batch, *positions.shape[1:]), dtype=positions.dtype, device=positions.device
        )
        kept = torch.empty((n_saves, n_batch), dtype=torch.bool, device=positions.device)
        replicas = self.replicas
        alive = self.failed_save[replicas] < 0
        outside = self.outside
        save_unit = self._save_unit(state, outside)
        for save in range(n_saves):
            state, codes, outside = save_unit(state, outside)
            codes = codes.view(n_batch, rungs)
            first = (codes != HEALTHY).to(torch.int8).argmax(dim=1, keepdim=True)
            code = codes.gather(1, first)[:, 0]
            newly = alive & (code != HEALTHY)
            self.failed_code[replicas] = torch.where(newly, code, self.failed_code[replicas])
            self.failed_save[replicas] = torch.where(
                newly, torch.full_like(replicas, self.n_saved + save), self.failed_save[replicas]
            )
            alive = alive & ~newly
            frames[save] = state.positions.view(n_batch, rungs, *positions.shape[1:])[:, 0]
            kept[save] = alive
        # The last save's tensors may be a graph's output buffers: keep copies.
        self.state = dataclasses.replace(
            state, **{name: getattr(state, name).clone() for name in DYNAMIC}
        )
        self.outside = outside.clone()
        self.n_saved += n_saves
        return frames, kept

    def advance_checked(self, n_saves: int, desc: str) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`advance`, then the neighbour lists' overflow check: after an overflow
        (pairs were dropped, so the forces were wrong) the saves run again from where they
        began, with the lists grown, until none overflows (a list as long as a bead's
        partners cannot)."""
        if not self.neighbour_lists:
            return self.advance(n_saves)
        begin = self.state_bytes()
        while True:
            try:
                frames, kept = self.advance(n_saves)
                for neighbours in self.neighbour_lists:
                    neighbours.check()
                return frames, kept
            except NeighbourListOverflow as error:
                self.load_state_bytes(begin)
                capacities = [neighbours.grow() for neighbours in self.neighbour_lists]
                log.warning(
                    "%s: %s. Saves %d-%d run again with at least %s slots per bead",
                    desc,
                    error,
                    self.n_saved + 1,
                    self.n_saved + n_saves,
                    capacities,
                )

    def save(self, state: State, outside: torch.Tensor) -> tuple[State, torch.Tensor, torch.Tensor]:
        """One save: ``save_every`` steps, then the health check (codes per row and the
        updated out-of-range counters)."""
        for _ in range(self.save_every):
            state = self.integrator.step(state)
        codes, outside = self.health.check(state.positions, outside)
        return state, codes, outside

    def _save_unit(self, state: State, outside: torch.Tensor) -> SaveUnit:
        """The save of this block's batch: captured as a CUDA graph where possible
        (:mod:`cgpipe.simulate.graphs`), else :meth:`save`."""
        if self.static_buffers:  # the graph's code path, run eagerly (tests on CPU)
            return StaticSave(self.save, state, outside, None, capture=False)
        return build_save(self.save, state, outside, self.integrator, enabled=self.cuda_graph)

    def compact(self) -> int:
        """Remove failed replicas from the batch (a host synchronisation); returns the
        replicas left."""
        alive = self.failed_save[self.replicas] < 0
        n_alive = int(alive.sum())
        if n_alive < len(alive):
            rows = alive.repeat_interleave(self.rungs)
            self.state = self.state.select(rows)
            self.outside = self.outside[rows]
        return n_alive

    def run(self, n_steps: int, blocks: Blocks, *, desc: str = "simulate") -> Outcome:
        """Run to ``n_steps`` (whole saves), resuming from ``blocks`` where it holds a
        checkpoint of these settings; every block's frames go to ``blocks``."""
        n_saves = n_steps // self.save_every
        resumed = blocks.load()
        if resumed is not None:
            self.load_state_bytes(resumed["state"])
            seconds, restarts = float(resumed["seconds"]), int(resumed["restarts"]) + 1
            log.info("%s: resuming at save %d of %d", desc, self.n_saved, n_saves)
        else:
            blocks.reset()
            seconds, restarts = 0.0, 0
        progress = tqdm(
            total=n_saves, initial=self.n_saved, desc=desc, file=sys.stderr, mininterval=5
        )
        with progress:
            while self.n_saved < n_saves and len(self.state.replicas):
                size = min(self.saves_per_block, n_saves - self.n_saved)
                start = time.perf_counter()
                frames, kept = self.advance_checked(size, desc)
                replicas = self.replicas.cpu()
                every = torch.zeros((size, self.n_replicas, self.n_beads, 3), dtype=frames.dtype)
                every[:, replicas] = frames.cpu()
                kept_every = torch.zeros((size, self.n_replicas), dtype=torch.bool)
                kept_every[:, replicas] = kept.cpu()
                self.n_blocks += 1
                self.compact()
                seconds += time.perf_counter() - start
                blocks.save_block(
                    self.n_blocks - 1, positions=every.numpy(), kept=kept_every.numpy()
                )
                blocks.save_state(
                    self.state_bytes(),
                    n_blocks=self.n_blocks,
                    seconds=seconds,
                    restarts=restarts,
                )
                progress.update(size)
        failed_save = self.failed_save.cpu().numpy()
        codes = self.failed_code.cpu().numpy()
        n_frames = np.zeros(self.n_replicas, dtype=np.int64)
        for (kept_block,) in blocks.blocks(self.n_blocks, "kept"):
            n_frames += kept_block.sum(axis=0)
        return Outcome(
            failed_save=failed_save,
            reasons=[
                REASONS[int(c)] if s >= 0 else "" for c, s in zip(codes, failed_save, strict=True)
            ],
            n_frames=n_frames,
            seconds=seconds,
            restarts=restarts,
        )

    def frames_by_replica(self, blocks: Blocks) -> Iterator[tuple[int, np.ndarray]]:
        """(replica, [n_kept, n_beads, 3] positions) of every replica, in order, read from
        the memory-mapped blocks."""
        for replica in range(self.n_replicas):
            parts = []
            for number in range(self.n_blocks):
                kept = blocks.block(number, "kept", mmap=True)[:, replica]
                if kept.any():
                    positions = blocks.block(number, "positions", mmap=True)
                    parts.append(np.asarray(positions[np.flatnonzero(kept), replica]))
            empty = np.empty((0, self.n_beads, 3), dtype=np.float32)
            yield replica, np.concatenate(parts) if parts else empty


def write_frames(
    simulation: Simulation,
    blocks: Blocks,
    writer: TrajectoryWriter,
    interval: float,
) -> None:
    """Append every replica's kept frames to ``writer``, replica by replica, labelled by
    replica, at times (save + 1) * ``interval`` ps."""
    for replica, positions in simulation.frames_by_replica(blocks):
        if not len(positions):
            continue
        # A replica's kept saves are its first ones: it is kept until it fails.
        times = (np.arange(len(positions)) + 1) * interval
        writer.append(positions, times, trajectory_index=replica)
