"""Seeds derived from the master seed, so that every stage and fold draws its own
independent, reproducible random stream.

Every stage takes its seed from :func:`stage_seed`, with the job's identity (system,
mapping, model, fold) given explicitly: the command line reads it from its options or
from the path grammar (:func:`cgpipe.paths.identify`), never from a file name's parts.
:data:`SEED_FIELDS` says which fields each stage's seed depends on, so that two jobs
that differ in any of them never share a stream.
"""

from __future__ import annotations

import zlib

import numpy as np

# Per stage, the identity fields its seed depends on (besides the master seed and the
# system), in the order they enter the seed; a trailing "?" marks a field that may be
# absent (a fixed map has no fold). Stage names are labels of the seed: renaming one
# changes every seed of that stage.
SEED_FIELDS: dict[str, tuple[str, ...]] = {
    "prepare": (),
    "reference": ("index",),  # index: the reference trajectory
    "reference-start": ("index",),  # its high-temperature start run
    "mapping": ("mapping", "fold?"),  # a fitted map is fitted per fold
    "compare": ("mapping",),  # the bootstrap of the mapping scores
    "random map": ("mapping", "fold", "index"),  # index: the random map's number
    "train": ("mapping", "model", "fold"),
    "simulate": ("mapping", "model", "fold"),
    "sample": ("mapping", "model", "fold"),  # i.i.d. draws of a model that samples them
    "evaluate": ("mapping", "model"),
    "backmap-fit": ("mapping", "fold"),  # then derived with the backmapper's name
}


def derive_seed(master_seed: int, *labels: str | int) -> int:
    """A seed in [1, 2**31 - 1] from the master seed and labels (stage, system, fold, ...).

    Never 0, which OpenMM reads as 'pick a seed at random'. Stages call
    :func:`stage_seed`, which chooses the labels.
    """
    entropy = [master_seed] + [
        label if isinstance(label, int) else zlib.crc32(label.encode()) for label in labels
    ]
    state = np.random.SeedSequence(entropy)
    return int(state.generate_state(1)[0] % (2**31 - 2)) + 1


def stage_seed(
    master_seed: int,
    stage: str,
    system: str,
    *,
    mapping: str | None = None,
    model: str | None = None,
    fold: int | None = None,
    index: int | None = None,
) -> int:
    """The seed of one job of ``stage``: a function of the master seed, the stage and the
    fields :data:`SEED_FIELDS` lists for it, and of nothing else.

    The labels are ``(stage, system, mapping, model, fold, index)`` with the fields the
    stage does not take left out, so that the seeds of the reference, prepare, compare
    and evaluate stages, and those of training and simulation on a fixed map, are the
    ones cgpipe has drawn since these stages were written.

    Parameters
    ----------
    master_seed
        The configuration's ``seed``.
    stage
        A key of :data:`SEED_FIELDS`.
    system, mapping, model, fold
        The job's wildcards (``fold`` as its number).
    index
        A number within the job: the reference trajectory, the random map.

    Raises
    ------
    ValueError
        An unknown stage, or a field given that the stage does not take, or one missing
        that it does.
    """
    if stage not in SEED_FIELDS:
        raise ValueError(f"no seed for stage {stage!r}; stages: {sorted(SEED_FIELDS)}")
    given = {"mapping": mapping, "model": model, "fold": fold, "index": index}
    takes = {field.rstrip("?"): field.endswith("?") for field in SEED_FIELDS[stage]}
    for field, value in given.items():
        if field not in takes and value is not None:
            raise ValueError(f"the {stage} stage's seed takes no {field} (given {value!r})")
        if field in takes and not takes[field] and value is None:
            raise ValueError(f"the {stage} stage's seed needs its {field}")
    labels = [value for value in given.values() if value is not None]
    return derive_seed(master_seed, stage, system, *labels)


def replicate_seed(seed: int, replicate: int) -> int:
    """The seed of training replicate ``replicate`` of a job whose seed is ``seed``:
    ``seed`` itself for the first, so that ``train.seeds`` = 1 trains as a single run
    does, then derived from it."""
    return seed if replicate == 0 else derive_seed(seed, "replicate", replicate)
