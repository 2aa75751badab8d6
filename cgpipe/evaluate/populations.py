"""Basin populations with 95 % intervals: of the reference (pooled, and per trajectory), of
each fold's CG simulation, pooled over folds, and of the echo baseline (the start set)."""

from __future__ import annotations

import re

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.statistics import Resampling, populations

_NAME = re.compile(
    rf"^{keys.POPULATION_PREFIX}(?P<state>[A-Za-z0-9_]+?)"
    rf"(?P<suffix>{keys.REFERENCE_SUFFIX}(_traj(?P<traj>\d+))?|{keys.ECHO_SUFFIX})?$"
)


@METRICS.register("populations")
class Populations(Metric):
    """Fraction of frames (0-1) in each state of :attr:`EvaluationContext.states` (phi/psi
    basins, or the sides of TIC1), with a bootstrap interval.

    The reference pooled: bootstrap over its trajectories (circular blocks within each
    with fewer than 5); each reference trajectory: circular blocks within it; a fold's
    CG production frames (and all folds pooled): bootstrap over replicas; the echo
    baseline (each replica's start frame, weighted by its production frames): no interval.

    Parameters
    ----------
    resamples
        Bootstrap resamples of each interval.
    """

    needs = frozenset({"reference", "simulation", "health"})
    samplings = frozenset({"dynamics", "iid"})
    captions = {keys.POPULATION_PREFIX + "<state>": "Population (0-1) of a state."}

    def __init__(self, *, resamples: int) -> None:
        self.resamples = resamples

    def caption(self, metric: str) -> str | None:
        match = _NAME.match(metric)
        if match is None:
            return None
        state, suffix, traj = match["state"], match["suffix"] or "", match["traj"]
        what = f"Population (0-1) of {state}"
        if traj is not None:
            return f"{what} in reference trajectory {traj}; interval: block bootstrap within it."
        if suffix == keys.REFERENCE_SUFFIX:
            return (
                f"{what} in the reference, all trajectories; interval: bootstrap over them "
                "(blocks within each with fewer than 5)."
            )
        if suffix == keys.ECHO_SUFFIX:
            return f"{what} in the start set (echo baseline: replicas that never move)."
        return (
            f"{what} in the CG production frames; interval: bootstrap over replicas within "
            "start groups."
        )

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        states = context.states
        names = states.names
        n = len(names)
        reference = context.reference_states()
        labels = context.reference.trajectory_index
        rows: list[MetricRow] = []

        def add(
            fold: str,
            suffix: str,
            state_of_frame: np.ndarray,
            groups: np.ndarray,
            rng_name: str,
            resampling: Resampling | None = None,
        ) -> None:
            estimates = populations(
                state_of_frame,
                groups,
                n,
                context.rng(rng_name),
                self.resamples,
                resampling=resampling,
            )
            for name, estimate in zip(names, estimates, strict=True):
                rows.append(
                    MetricRow(
                        fold,
                        keys.POPULATION_PREFIX + name + suffix,
                        estimate.value,
                        estimate.low,
                        estimate.high,
                    )
                )

        dynamics = context.sampling == "dynamics"  # i.i.d. draws: no start set, no echo
        if dynamics:  # the reference's rows once, in the dynamics context's table
            add(keys.ALL_FOLDS, keys.REFERENCE_SUFFIX, reference, labels, "populations/reference")
        for trajectory in np.unique(labels) if dynamics else ():
            frames = labels == trajectory
            add(
                keys.ALL_FOLDS,
                f"{keys.REFERENCE_SUFFIX}_traj{int(trajectory)}",
                reference[frames],
                np.zeros(int(frames.sum()), dtype=np.int64),
                f"populations/reference/{trajectory}",
            )
        pooled_states, pooled_groups, pooled_echo = [], [], []
        for fold in context.folds:
            simulation = context.simulation(fold)
            if not simulation.n_frames:
                continue
            label = context.label(fold)
            simulated = context.simulation_states(fold)
            by_design = context.sample(fold).resampling(escaped=False)
            add(
                label, "", simulated, simulation.trajectory_index, f"populations/{label}", by_design
            )
            pooled_states.append(simulated)
            pooled_groups.append(simulation.trajectory_index + fold * 1_000_000)
            if not dynamics:
                continue
            echo = reference[context.start_frames(fold)]
            fractions = np.bincount(echo, minlength=n) / len(echo)
            rows += [
                MetricRow(label, keys.POPULATION_PREFIX + name + keys.ECHO_SUFFIX, float(f))
                for name, f in zip(names, fractions, strict=True)
            ]
            pooled_echo.append(echo)
        if len(pooled_states) > 1:
            add(
                keys.ALL_FOLDS,
                "",
                np.concatenate(pooled_states),
                np.concatenate(pooled_groups),
                "populations/pooled",
            )
        if len(pooled_echo) > 1:
            echo = np.concatenate(pooled_echo)
            fractions = np.bincount(echo, minlength=n) / len(echo)
            rows += [
                MetricRow(
                    keys.ALL_FOLDS, keys.POPULATION_PREFIX + name + keys.ECHO_SUFFIX, float(f)
                )
                for name, f in zip(names, fractions, strict=True)
            ]
        return rows
