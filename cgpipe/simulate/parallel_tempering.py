"""Parallel tempering (replica exchange) over a temperature ladder, each rung under BAOAB.

Each replica is a ladder of ``len(ladder)`` rows at kT times ``ladder`` (the first rung,
factor 1, at the target temperature). Every ``exchange_every`` steps neighbouring rungs
of every ladder try to swap configurations, even pairs and odd pairs in turn, with the
Metropolis probability min(1, exp((beta_i - beta_j)(E_i - E_j))), which keeps each
rung's Boltzmann distribution (Swendsen & Wang 1986; Sugita & Okamoto 1999). Velocities
that move to another rung are rescaled by sqrt(T_new / T_old). Only the first rung's
frames are saved, so the evaluation sees the target temperature alone.

Random numbers of the exchanges, like the noise, are drawn for every replica the batch
started with, so a replica removed from the batch changes nothing for the others.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from cgpipe.errors import InputError
from cgpipe.simulate.baoab import BAOAB
from cgpipe.simulate.base import INTEGRATORS, EnergyAndForces, State


@INTEGRATORS.register("parallel_tempering")
class ParallelTempering(BAOAB):
    """BAOAB on every rung of a temperature ladder, with Metropolis exchanges.

    Parameters
    ----------
    energy_and_forces, masses, timestep, generator, friction
        As for :class:`~cgpipe.simulate.baoab.BAOAB`.
    ladder
        Temperatures as multiples of the target's: 1 first, then increasing.
    exchange_every
        Steps between exchange attempts.
    """

    capturable = False  # when to exchange, and which pairs, is counted on the host

    def __init__(
        self,
        energy_and_forces: EnergyAndForces,
        masses: torch.Tensor,
        timestep: float,
        generator: torch.Generator | None = None,
        *,
        friction: float,
        ladder: list[float],
        exchange_every: int,
    ) -> None:
        super().__init__(energy_and_forces, masses, timestep, generator, friction=friction)
        ladder = [float(t) for t in ladder]
        if len(ladder) < 2 or ladder[0] != 1.0 or sorted(set(ladder)) != ladder:
            raise InputError(
                f"simulate.parallel_tempering.ladder must start at 1 and increase, with at "
                f"least two rungs; got {ladder}"
            )
        if exchange_every < 1:
            raise InputError(
                f"simulate.parallel_tempering.exchange_every must be >= 1, got {exchange_every}"
            )
        self.ladder = ladder
        self.rungs = len(ladder)
        self.exchange_every = int(exchange_every)
        self.n_steps = 0
        self.n_exchanges = 0
        self.attempts = torch.zeros(self.rungs - 1, dtype=torch.long)
        self.accepted = torch.zeros(self.rungs - 1, dtype=torch.long)

    def expand(
        self, positions: torch.Tensor, kT: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each replica's start on every rung, at kT times the ladder."""
        factors = torch.tensor(self.ladder, dtype=kT.dtype, device=kT.device)
        rows = positions.repeat_interleave(self.rungs, dim=0)
        return rows, (kT.view(-1, 1) * factors.view(1, -1)).reshape(-1)

    def step(self, state: State) -> State:
        state = super().step(state)
        self.n_steps += 1
        if self.n_steps % self.exchange_every == 0:
            state = self.exchange(state)
        return state

    def exchange(self, state: State) -> State:
        """One round of exchanges between neighbouring rungs (even pairs, then odd pairs
        at the next round)."""
        rungs = self.rungs
        parity = self.n_exchanges % 2
        self.n_exchanges += 1
        positions = state.positions
        # Uniform variates for every pair of every replica the batch started with.
        uniform = torch.rand(
            (state.n_total // rungs, rungs - 1),
            generator=self.generator,
            device=positions.device,
            dtype=positions.dtype,
        )
        left = torch.arange(parity, rungs - 1, 2, device=positions.device)
        if not len(left):
            return state
        n_batch = len(state.replicas) // rungs
        if not state.complete:
            uniform = uniform[state.replicas[::rungs] // rungs]
        energies = state.energies.view(n_batch, rungs)
        beta = 1.0 / state.kT.view(n_batch, rungs)
        right = left + 1
        log_ratio = (beta[:, left] - beta[:, right]) * (energies[:, left] - energies[:, right])
        accept = torch.log(uniform[:, left]) < log_ratio
        order = torch.arange(rungs, device=positions.device).repeat(n_batch, 1)
        order[:, left] = torch.where(accept, right, left)
        order[:, right] = torch.where(accept, left, right)
        source = (torch.arange(n_batch, device=positions.device).view(-1, 1) * rungs + order).view(
            -1
        )
        self.attempts = self.attempts.to(positions.device)
        self.accepted = self.accepted.to(positions.device)
        self.attempts[left] += n_batch
        self.accepted[left] += accept.sum(dim=0)
        scale = torch.sqrt(state.kT / state.kT[source]).view(-1, 1, 1)
        return dataclasses.replace(
            state,
            positions=positions[source],
            velocities=state.velocities[source] * scale,
            forces=state.forces[source],
            energies=state.energies[source],
        )

    def exchange_table(self, temperature: float) -> list[dict[str, Any]]:
        """Per neighbouring pair: its temperatures (K, for target ``temperature``),
        exchange attempts, acceptances and the acceptance rate."""
        rows = []
        for pair, (attempts, accepted) in enumerate(
            zip(self.attempts.tolist(), self.accepted.tolist(), strict=True)
        ):
            rows.append(
                {
                    "pair": pair,
                    "temperature_low": temperature * self.ladder[pair],
                    "temperature_high": temperature * self.ladder[pair + 1],
                    "attempts": attempts,
                    "accepted": accepted,
                    "acceptance": accepted / attempts if attempts else float("nan"),
                }
            )
        return rows

    def state_dict(self) -> dict[str, Any]:
        return {
            "n_steps": self.n_steps,
            "n_exchanges": self.n_exchanges,
            "attempts": self.attempts.cpu(),
            "accepted": self.accepted.cpu(),
        }

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.n_steps = int(saved["n_steps"])
        self.n_exchanges = int(saved["n_exchanges"])
        self.attempts = saved["attempts"].clone()
        self.accepted = saved["accepted"].clone()
