"""Has the CG simulation forgotten where it started?

Two checks per fold, on the production frames (after burn-in):

1. **Relaxation time.** The integrated autocorrelation time (Sokal's window,
   :func:`~cgpipe.evaluate.statistics.autocorrelation_time`, pooled over replicas) of
   each slow observable: sign(phi) where the map keeps phi/psi, TIC1 of the TICA of
   every reference trajectory, and the indicator of each state; the slowest is the
   relaxation time. A production run shorter than ``min_relaxation_times`` of it per
   replica, or one too short for Sokal's window (the estimate is then a lower bound), is
   not converged.
2. **Start set.** Half the replicas start in one state and half in another (the simulate
   stage's start set). The populations of those two start states over the second half
   of the production must agree between the groups: each difference has a 95 % interval
   (bootstrap over replicas within each group) containing 0.

``converged`` is 1 when both hold, else 0; the report prints no verdict for a fold
with 0.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

from cgpipe import keys
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.statistics import Estimate, autocorrelation_time, interval
from cgpipe.observables import frame_interval


def _series(values: np.ndarray, replicas: np.ndarray) -> list[np.ndarray]:
    return [values[replicas == r] for r in np.unique(replicas)]


def relaxation_time(series: list[list[np.ndarray]], dt: float) -> tuple[float, bool]:
    """The largest integrated autocorrelation time (ps) over observables (each a list of
    per-replica series), and whether every estimate had a full Sokal window (False: a
    lower bound). Constant observables are skipped; NaN when all are."""
    taus, complete = [], True
    for observable in series:
        if np.ptp(np.concatenate(observable)) == 0:
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", RuntimeWarning)
            taus.append(autocorrelation_time(observable, dt))
        complete &= not any(issubclass(w.category, RuntimeWarning) for w in caught)
    return (max(taus) if taus else math.nan), complete


@METRICS.register("convergence")
class Convergence(Metric):
    """Per fold: relaxation time (ps, with a bootstrap interval over replicas), production
    length over relaxation time, the start-set groups' largest population difference (with
    its interval) and the verdict ``converged`` (1 or 0).

    Parameters
    ----------
    min_relaxation_times
        Fewest relaxation times a replica's production must last.
    resamples
        Bootstrap resamples of each interval.
    """

    needs = frozenset({"reference", "simulation", "health"})
    captions = {
        keys.RELAXATION_TIME: (
            "Relaxation time (ps) of the CG simulation: the largest integrated autocorrelation "
            "time of sign(φ), TIC1 and the state indicators over the production frames; "
            "interval: bootstrap over replicas."
        ),
        keys.RUN_OVER_RELAXATION: (
            "Production length per replica over the relaxation time (the protocol asks >= 10)."
        ),
        keys.START_SET_DIFFERENCE: (
            "Largest difference (0-1) between the state populations of the replicas started in "
            "one state and those started in the other, over the second half of production; "
            "interval: bootstrap over replicas within each group (it must contain 0)."
        ),
        keys.CONVERGED: (
            "1 if the production lasts >= the required relaxation times and the two start "
            "groups agree within error, else 0 (not converged: no verdict)."
        ),
    }

    def __init__(self, *, min_relaxation_times: float, resamples: int) -> None:
        self.min_relaxation_times = min_relaxation_times
        self.resamples = resamples

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        rows: list[MetricRow] = []
        for fold in context.folds:
            simulation = context.simulation(fold)
            if simulation.n_frames < 2:
                continue
            label = context.label(fold)
            replicas = simulation.trajectory_index
            dt = frame_interval(simulation)
            states = context.simulation_states(fold)
            observables = [
                context.tica(None).transform(simulation)[:, 0],
                *[(states == k).astype(float) for k in range(len(context.states.names))],
            ]
            if context.projection.name == "phi_psi":
                observables.insert(0, np.sign(context.simulation_values(fold)[:, 0]))
            series = [_series(values, replicas) for values in observables]
            tau, complete = relaxation_time(series, dt)
            rng = context.rng(f"convergence/{label}")
            resampled = []
            n = len(series[0])
            for _ in range(self.resamples):
                chosen = rng.integers(0, n, n)
                resampled.append(relaxation_time([[s[i] for i in chosen] for s in series], dt)[0])
            resampled = np.array(resampled)
            resampled = resampled[np.isfinite(resampled)]
            low, high = interval(resampled) if len(resampled) else (math.nan, math.nan)
            lengths = [len(s) * dt for s in series[0]]
            ratio = float(np.median(lengths)) / tau if tau > 0 else math.nan
            difference = self._start_set(context, fold, simulation, states, rng)
            converged = (
                complete
                and np.isfinite(ratio)
                and ratio >= self.min_relaxation_times
                and difference is not None
                and difference.low <= 0 <= difference.high
            )
            rows += [
                MetricRow(label, keys.RELAXATION_TIME, tau, low, high),
                MetricRow(label, keys.RUN_OVER_RELAXATION, ratio),
            ]
            if difference is not None:
                rows.append(
                    MetricRow(
                        label,
                        keys.START_SET_DIFFERENCE,
                        difference.value,
                        difference.low,
                        difference.high,
                    )
                )
            rows.append(MetricRow(label, keys.CONVERGED, float(converged)))
        return rows

    def _start_set(
        self,
        context: EvaluationContext,
        fold: int,
        simulation,
        states: np.ndarray,
        rng: np.random.Generator,
    ) -> Estimate | None:
        """The state whose populations differ most between the two start groups: the
        difference (group 1 - group 2) over the second half of production, with its
        interval; None with fewer than two start groups (or one replica in a group)."""
        health = context.health(fold)
        if keys.START_STATE not in health:
            return None
        group_of = dict(zip(health[keys.REPLICA], health[keys.START_STATE], strict=True))
        late = simulation.time > np.median(np.unique(simulation.time))
        replicas = simulation.trajectory_index[late]
        late_states = states[late]
        groups: dict[str, list[np.ndarray]] = {}
        for replica in np.unique(replicas):
            groups.setdefault(group_of[replica], []).append(late_states[replicas == replica])
        if len(groups) != 2 or min(len(g) for g in groups.values()) < 2:
            return None
        n_states = len(context.states.names)
        first, second = (groups[name] for name in sorted(groups))

        def fractions(series: list[np.ndarray]) -> np.ndarray:
            return np.bincount(np.concatenate(series), minlength=n_states) / sum(map(len, series))

        value = fractions(first) - fractions(second)
        resampled = np.array(
            [
                fractions([first[i] for i in rng.integers(0, len(first), len(first))])
                - fractions([second[i] for i in rng.integers(0, len(second), len(second))])
                for _ in range(self.resamples)
            ]
        )
        # Memory of the start shows in the populations of the two start states; a third,
        # rare state (alpha_L) has a degenerate bootstrap near 0 whose interval excludes 0
        # on differences of a few 0.001, so it is not tested. Of the start states, the one
        # whose interval lies furthest from 0 (else the one with the largest |difference|).
        tested = [context.states.names.index(name) for name in sorted(groups)]
        bounds = {k: interval(resampled[:, k]) for k in tested}
        outside = {k: max(low, -high, 0.0) for k, (low, high) in bounds.items()}
        k = max(tested, key=lambda k: (outside[k], abs(value[k])))
        return Estimate(float(value[k]), *bounds[k])
