"""Force error of a fold's model, and of its prior alone, on the held-out trajectories, and
how much the model improves on its prior: Delta MSE = MSE(prior) - MSE(model).

The CG reference force of a frame is the mapped all-atom force, the mean force plus a
large fluctuating part (force noise) that no CG model can predict (Noid et al. 2008, J.
Chem. Phys. 128, 244114; Wang et al. 2019, ACS Cent. Sci. 5, 755), so both RMSEs sit on
a high floor and their intervals overlap. Scored frame by frame on the same frames, the
noise is shared by the two and cancels in the paired difference, whose block-bootstrap
interval (:func:`~cgpipe.evaluate.statistics.block_bootstrap_difference`) says whether
the model beats its prior.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cgpipe import keys
from cgpipe.data import evenly
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric, MetricRow
from cgpipe.evaluate.statistics import block_bootstrap_difference
from cgpipe.io import TrajectoryData

BATCH_FRAMES = 1000  # frames per force evaluation, to bound memory


@METRICS.register("force_error")
class ForceError(Metric):
    """Force RMSE (kJ/mol/nm, per component) of each fold's model, and of its prior
    alone, on the CG reference frames of that fold's held-out trajectories (spread
    evenly, at most ``max_frames``), and Delta MSE = MSE(prior) - MSE(model)
    ((kJ/mol/nm)^2) with its 95 % interval, per fold and pooled over folds
    (:data:`~cgpipe.keys.ALL_FOLDS`). No rows when the reference has no forces
    (positions-only data such as mdshare's); no Delta MSE for a model without a prior.

    Parameters
    ----------
    max_frames
        At most this many held-out frames are scored, spread evenly over them.
    resamples
        Bootstrap resamples of the Delta MSE interval.
    """

    needs = frozenset({"reference", "model"})
    captions = {
        keys.FORCE_RMSE_HELDOUT: "Force RMSE on held-out trajectories (kJ/mol/nm per component).",
        keys.FORCE_RMSE_HELDOUT_PRIOR: (
            "Force RMSE of the prior alone on held-out trajectories (kJ/mol/nm per component)."
        ),
        keys.FORCE_DELTA_MSE: (
            "Force MSE of the prior alone minus that of the model, frame by frame on held-out "
            "trajectories, with a block-bootstrap 95 % interval ((kJ/mol/nm)^2 per component; "
            "> 0: the model beats its prior)."
        ),
    }

    def __init__(self, *, max_frames: int, resamples: int = 1000) -> None:
        self.max_frames = max_frames
        self.resamples = resamples

    def rows(self, context: EvaluationContext) -> list[MetricRow]:
        reference = context.reference
        if reference.forces is None:
            return []
        rows: list[MetricRow] = []
        paired: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # (prior, model, labels)
        for fold in context.folds:
            frames = evenly(context.heldout_frames(fold), self.max_frames)
            model = context.model(fold)
            name = context.label(fold)
            model_mse = _frame_mse(model, reference, frames)
            rows.append(MetricRow(name, keys.FORCE_RMSE_HELDOUT, _rmse(model_mse)))
            prior = model.prior_model()
            if prior is None:
                continue
            prior_mse = _frame_mse(prior, reference, frames)
            rows.append(MetricRow(name, keys.FORCE_RMSE_HELDOUT_PRIOR, _rmse(prior_mse)))
            labels = reference.trajectory_index[frames]
            rows.append(self._delta(context, name, prior_mse, model_mse, labels))
            paired.append((prior_mse, model_mse, labels))
        if paired:
            # Each fold holds out other trajectories, so the labels stay distinct when pooled.
            prior_mse, model_mse, labels = (
                np.concatenate(parts) for parts in zip(*paired, strict=True)
            )
            rows.append(self._delta(context, keys.ALL_FOLDS, prior_mse, model_mse, labels))
        return rows

    def _delta(
        self,
        context: EvaluationContext,
        fold: str,
        prior_mse: np.ndarray,
        model_mse: np.ndarray,
        labels: np.ndarray,
    ) -> MetricRow:
        """The Delta MSE row of ``fold`` (a fold's label or ALL_FOLDS), drawing from a
        generator of its own so that no row depends on which were computed before it."""
        estimate = block_bootstrap_difference(
            prior_mse,
            model_mse,
            block_length=None,
            rng=context.rng(f"{keys.FORCE_DELTA_MSE}/{fold}"),
            n_resamples=self.resamples,
            trajectory_labels=labels,
        )
        return MetricRow(fold, keys.FORCE_DELTA_MSE, estimate.value, estimate.low, estimate.high)


def _frame_mse(model: Any, reference: TrajectoryData, frames: np.ndarray) -> np.ndarray:
    """[len(frames)] mean over beads and components of (F_model - F_reference)^2,
    (kJ/mol/nm)^2, for the given reference frames (positions in float32 as the model
    takes them; the error in float64, so that the paired difference of two such values
    keeps its digits)."""
    assert reference.forces is not None
    mse = np.empty(len(frames))
    for start in range(0, len(frames), BATCH_FRAMES):
        batch = frames[start : start + BATCH_FRAMES]
        positions = torch.as_tensor(reference.coordinates[batch], dtype=torch.float32)
        _, predicted = model.energy_and_forces(positions)
        error = predicted.detach().cpu().numpy().astype(float) - reference.forces[batch]
        mse[start : start + len(batch)] = (error**2).mean(axis=(1, 2))
    return mse


def _rmse(frame_mse: np.ndarray) -> float:
    """Force RMSE (kJ/mol/nm per component) from per-frame MSEs: every frame has as many
    components, so the mean of the frames' MSEs is the MSE over all components."""
    return float(np.sqrt(frame_mse.mean()))
