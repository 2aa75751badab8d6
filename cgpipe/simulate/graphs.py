"""One save of a simulation captured as a CUDA graph, or run eagerly on static buffers.

A save is ``save_every`` integrator steps and the health check. Eagerly, each step
launches hundreds of small kernels (a force call of the default CGSchNet, 558 on an
H200), so a step costs its launches, not its arithmetic. Captured once as a CUDA graph
and replayed, the same work is one launch. The graph reads and writes fixed buffers: the
state is copied into the input buffers before each replay and read from the output
buffers after it.

:class:`StaticSave` is that code path; ``capture=False`` runs it eagerly on the same
buffers (what the CPU tests compare against plain eager stepping). Capture needs a CUDA
device, an integrator whose step keeps no host-side state (``Integrator.capturable``) and
a forward pass with no host synchronisation; anything else, a failed capture, or a
replay that differs from an eager save beyond float tolerance, falls back to eager with
the reason logged. The random numbers come from the integrator's generator, registered
with the graph, so a replay draws what the eager save would.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import torch

from cgpipe.simulate.base import Integrator, State

log = logging.getLogger(__name__)

SaveUnit = Callable[[State, torch.Tensor], tuple[State, torch.Tensor, torch.Tensor]]
"""(state, out-of-range counters) -> (state after one save, health codes, counters)."""

DYNAMIC = ("positions", "velocities", "forces", "energies", "kT")
"""State tensors that change between saves (``replicas`` is fixed within a block)."""


def unavailable(integrator: Integrator, device: torch.device) -> str | None:
    """Why a save cannot be captured as a CUDA graph here, or None if it can."""
    if device.type != "cuda":
        return f"the device is {device}, not CUDA"
    if not integrator.capturable:
        return f"the integrator {integrator.name!r} keeps host-side state between steps"
    if integrator.generator is None:
        return "the integrator has no generator of its own to register with the graph"
    return None


class StaticSave:
    """``unit`` on fixed input and output buffers, captured as a CUDA graph when
    ``capture``.

    Parameters
    ----------
    unit
        One save (the simulation's steps and health check).
    state, outside
        The state and counters the buffers are shaped (and first filled) from.
    generator
        The integrator's generator (registered with the graph).
    capture
        Capture a CUDA graph (else run eagerly on the buffers).
    """

    def __init__(
        self,
        unit: SaveUnit,
        state: State,
        outside: torch.Tensor,
        generator: torch.Generator | None,
        *,
        capture: bool,
    ) -> None:
        self.unit = unit
        self.inputs = dataclasses.replace(
            state, **{name: getattr(state, name).clone() for name in DYNAMIC}
        )
        self.outside = outside.clone()
        self.graph: torch.cuda.CUDAGraph | None = None
        self.outputs: tuple[State, torch.Tensor, torch.Tensor] | None = None
        if capture:
            self._capture(generator)

    def _capture(self, generator: torch.Generator | None) -> None:
        saved = generator.get_state() if generator is not None else None
        # Warm-up on a side stream (autograd and the allocator settle), as torch requires.
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(2):
                self.unit(self.inputs, self.outside)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        if generator is not None:
            graph.register_generator_state(generator)
        with torch.cuda.graph(graph):
            self.outputs = self.unit(self.inputs, self.outside)
        if saved is not None:
            generator.set_state(saved)
        self.graph = graph

    def __call__(
        self, state: State, outside: torch.Tensor
    ) -> tuple[State, torch.Tensor, torch.Tensor]:
        """One save from ``state``: the new state, codes and counters (views of the output
        buffers, valid until the next call)."""
        for name in DYNAMIC:
            getattr(self.inputs, name).copy_(getattr(state, name))
        self.outside.copy_(outside)
        if self.graph is None:
            return self.unit(self.inputs, self.outside)
        self.graph.replay()
        assert self.outputs is not None
        return self.outputs


def build_save(
    unit: SaveUnit,
    state: State,
    outside: torch.Tensor,
    integrator: Integrator,
    *,
    enabled: bool,
) -> SaveUnit:
    """The save to run in a block: captured where possible and checked against an eager
    save from the same state and random numbers, else ``unit`` itself (reason logged)."""
    device = state.positions.device
    reason = None if enabled else "simulate.cuda_graph is off"
    reason = reason or unavailable(integrator, device)
    if reason is not None:
        log.debug("simulation step not captured: %s", reason)
        return unit
    generator = integrator.generator
    assert generator is not None
    try:
        captured = StaticSave(unit, state, outside, generator, capture=True)
        before = generator.get_state()
        eager = unit(state, outside)[0].positions.clone()
        generator.set_state(before)
        replayed = captured(state, outside)[0].positions.clone()
        generator.set_state(before)
    except Exception as error:  # capture refuses anything that synchronises, in many ways
        log.warning("simulation step not captured as a CUDA graph (%s); running eagerly", error)
        return unit
    if not torch.allclose(replayed, eager, rtol=1e-4, atol=1e-5):
        difference = float((replayed - eager).abs().max())
        log.warning(
            "captured simulation step differs from the eager one by %.3g nm; running eagerly",
            difference,
        )
        return unit
    log.info("simulation step captured as a CUDA graph (%d rows)", len(state.replicas))
    return captured
