"""One epoch loop for every fit: model selection, early stopping, a progress bar, the loss
table, and a checkpoint after every epoch that a killed job resumes from.

A fit (a trainer's :meth:`~cgpipe.train.base.Trainer.fit`, the Autograin map) supplies
what one epoch does; :func:`run_epochs` runs the epochs. After each epoch it may keep the
parameters of the epoch with the lowest selection loss (model selection) and stop once
``patience`` epochs in a row have not lowered it (early stopping); without a finite
selection loss (no validation frames) every epoch runs and the last is kept.

With an :class:`EpochCheckpoint` the loop saves, after every epoch, everything the next
epoch depends on: the model's parameters, the state of every stateful helper (optimiser,
learning-rate schedule), the generator's state and torch's global random state, the
records so far and the best epoch's parameters. A run started again from that state
goes on at the next epoch and, on a CPU, ends bit for bit where an uninterrupted run
ends.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import torch
from tqdm import tqdm

from cgpipe.io.blocks import Blocks

log = logging.getLogger(__name__)


class Stateful(Protocol):
    """What the loop saves and restores besides the model: an optimiser, a schedule."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclasses.dataclass(frozen=True)
class EpochScores:
    """What one epoch reports.

    Attributes
    ----------
    records
        Rows of the loss table for this epoch (JSON-able values: numbers and strings).
    train_loss
        The epoch's mean training loss.
    selection_loss
        The loss the epoch is selected by (validation); NaN: none (never selected on).
    """

    records: list[dict[str, Any]]
    train_loss: float
    selection_loss: float = math.nan


@dataclasses.dataclass(frozen=True)
class EpochOutcome:
    """What :func:`run_epochs` reports; the model holds the selected epoch's parameters.

    Attributes
    ----------
    records
        Every epoch's records, in order.
    selected_epoch
        The epoch whose parameters the model holds (the lowest selection loss; without a
        finite one, the last).
    stopped_at_epoch
        The last epoch run.
    train_loss
        The selected epoch's training loss.
    selection_loss
        The selected epoch's selection loss (NaN without one).
    resumed_at_epoch
        The epoch the run went on from after a checkpoint (``None``: started afresh).
    """

    records: list[dict[str, Any]]
    selected_epoch: int
    stopped_at_epoch: int
    train_loss: float
    selection_loss: float
    resumed_at_epoch: int | None = None


@dataclasses.dataclass
class EpochCheckpoint:
    """Where the loop keeps its state between epochs: ``load`` gives the last saved state
    (or ``None``), ``save`` stores a new one (atomically: a kill leaves the previous)."""

    load: Callable[[], bytes | None]
    save: Callable[[bytes], None]


def folder_checkpoint(blocks: Blocks) -> EpochCheckpoint:
    """A checkpoint kept as the state of ``blocks`` (its folder emptied when it holds no
    state of its settings); the caller removes the folder once the fit's artifact is
    written."""
    saved = blocks.load()
    if saved is None:
        blocks.reset()

    def save(state: bytes) -> None:
        blocks.save_state(state, n_blocks=0)

    return EpochCheckpoint(lambda: None if saved is None else saved["state"], save)


def _plain(value: Any) -> Any:
    """A record value as a Python number or string (numpy scalars do not round-trip a
    weights-only checkpoint)."""
    return value.item() if isinstance(value, np.generic) else value


def run_epochs(
    epochs: int,
    epoch_step: Callable[[int], EpochScores],
    *,
    model: torch.nn.Module,
    stateful: Mapping[str, Stateful] | None = None,
    generator: torch.Generator | None = None,
    patience: int | None = None,
    select: bool = True,
    desc: str = "",
    unit: str = "",
    checkpoint: EpochCheckpoint | None = None,
    on_epoch: Callable[[int, EpochScores], None] | None = None,
) -> EpochOutcome:
    """Run ``epoch_step(epoch)`` for ``epoch`` = 0 … ``epochs`` - 1, or from where a
    checkpoint left off.

    Parameters
    ----------
    epochs
        At most this many epochs.
    epoch_step
        Runs one epoch (training, then scoring the validation frames in evaluation mode)
        and reports it; the model is in training mode when it is called, and in
        evaluation mode after the loop.
    model
        The model whose parameters are saved, selected and restored.
    stateful
        Helpers whose state the next epoch depends on (optimiser, schedule), by name.
    generator
        The generator the epochs draw from (batch order); its state is saved.
    patience
        Stop after this many epochs in a row without a strictly lower selection loss
        (counted from the first epoch while none was finite; ``None``: never stop early,
        as without validation frames).
    select
        Keep the epoch with the lowest selection loss (else always the last).
    desc
        The progress bar's and the log's label: each epoch's losses go to the log too,
        as a progress bar writes nothing to a job's log file, where it is no terminal.
    unit
        The losses' unit, for the log.
    checkpoint
        Save the loop's state after every epoch and resume from the saved one.
    on_epoch
        Called after every epoch (logging).
    """
    stateful = dict(stateful or {})
    records: list[dict[str, Any]] = []
    train_losses: list[float] = []
    selection_losses: list[float] = []
    best_epoch, best_loss, best_state = -1, math.inf, None
    start, resumed = 0, None
    saved = checkpoint.load() if checkpoint is not None else None
    if saved is not None:
        state = torch.load(io.BytesIO(saved), weights_only=True)
        model.load_state_dict(state["model"])
        for name, helper in stateful.items():
            helper.load_state_dict(state["stateful"][name])
        if generator is not None:
            generator.set_state(state["generator"])
        torch.set_rng_state(state["torch_rng"])
        records, train_losses = state["records"], state["train_losses"]
        selection_losses = state["selection_losses"]
        best_epoch, best_loss, best_state = state["best_epoch"], state["best_loss"], state["best"]
        start = resumed = int(state["next_epoch"])
    stopped = state["stopped"] if saved is not None else False
    for epoch in tqdm(
        range(start, epochs if not stopped else start),
        desc=desc,
        file=sys.stderr,
        mininterval=5,
        disable=None,
        initial=start,
        total=epochs,
    ):
        model.train()
        scores = epoch_step(epoch)
        if model.training:  # an epoch scores its validation frames in evaluation mode
            model.eval()
        records += [{k: _plain(v) for k, v in record.items()} for record in scores.records]
        train_losses.append(float(scores.train_loss))
        selection_losses.append(float(scores.selection_loss))
        selection = scores.selection_loss
        log.info(
            "%sepoch %d of %d: train loss %.4g%s%s",
            f"{desc} " if desc else "",
            epoch + 1,
            epochs,
            scores.train_loss,
            f", validation loss {selection:.4g}" if math.isfinite(selection) else "",
            f" {unit}" if unit else "",
        )
        if on_epoch is not None:
            on_epoch(epoch, scores)
        if select and scores.selection_loss < best_loss:  # NaN never improves
            best_epoch, best_loss = epoch, float(scores.selection_loss)
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        elif patience is not None and epoch - max(best_epoch, 0) >= patience:
            stopped = True
        if checkpoint is not None:
            buffer = io.BytesIO()
            torch.save(
                {
                    "next_epoch": epoch + 1,
                    "stopped": stopped,
                    "model": model.state_dict(),
                    "stateful": {name: h.state_dict() for name, h in stateful.items()},
                    "generator": generator.get_state() if generator is not None else None,
                    "torch_rng": torch.get_rng_state(),
                    "records": records,
                    "train_losses": train_losses,
                    "selection_losses": selection_losses,
                    "best_epoch": best_epoch,
                    "best_loss": best_loss,
                    "best": best_state,
                },
                buffer,
            )
            checkpoint.save(buffer.getvalue())
        if stopped:
            break
    if saved is not None and not train_losses:
        raise ValueError("a training checkpoint with no epoch in it")
    last = len(train_losses) - 1
    if model.training:  # nothing ran (a finished fit resumed)
        model.eval()
    if best_state is None:  # no selection loss was ever finite: the last epoch
        loss = selection_losses[last] if last >= 0 else math.nan
        return EpochOutcome(
            records,
            last,
            last,
            train_losses[last] if last >= 0 else math.nan,
            loss if math.isfinite(loss) else math.nan,
            resumed,
        )
    model.load_state_dict(best_state)
    return EpochOutcome(records, best_epoch, last, train_losses[best_epoch], best_loss, resumed)
