"""Force error of a fold's model, and of its prior alone, on the held-out trajectories."""

from __future__ import annotations

import numpy as np
import torch

from cgpipe import keys
from cgpipe.data import evenly
from cgpipe.evaluate.base import METRICS, EvaluationContext, Metric
from cgpipe.io import TrajectoryData
from cgpipe.models import force_rmse


@METRICS.register("force_error")
class ForceError(Metric):
    """Force RMSE (kJ/mol/nm, per component) of each fold's model, and of its prior
    alone, on the CG reference frames of that fold's held-out trajectories (spread
    evenly, at most ``max_frames``). No rows when the reference has no forces
    (positions-only data such as mdshare's).

    Parameters
    ----------
    max_frames
        At most this many held-out frames are scored, spread evenly over them.
    """

    needs = frozenset({"reference", "model"})
    captions = {
        keys.FORCE_RMSE_HELDOUT: "Force RMSE on held-out trajectories (kJ/mol/nm per component).",
        keys.FORCE_RMSE_HELDOUT_PRIOR: (
            "Force RMSE of the prior alone on held-out trajectories (kJ/mol/nm per component)."
        ),
    }

    def __init__(self, *, max_frames: int) -> None:
        self.max_frames = max_frames

    def rows(self, context: EvaluationContext) -> list[tuple[str, str, float]]:
        reference = context.reference
        if reference.forces is None:
            return []
        rows: list[tuple[str, str, float]] = []
        for fold in context.folds:
            frames = evenly(context.heldout_frames(fold), self.max_frames)
            model = context.model(fold)
            name = context.label(fold)
            rows.append((name, keys.FORCE_RMSE_HELDOUT, _rmse(model, reference, frames)))
            prior = model.prior_model()
            if prior is not None:
                rows.append((name, keys.FORCE_RMSE_HELDOUT_PRIOR, _rmse(prior, reference, frames)))
        return rows


def _rmse(model: object, reference: TrajectoryData, frames: np.ndarray) -> float:
    assert reference.forces is not None
    positions = torch.as_tensor(reference.coordinates[frames], dtype=torch.float32)
    forces = torch.as_tensor(reference.forces[frames], dtype=torch.float32)
    return force_rmse(model, positions, forces)
