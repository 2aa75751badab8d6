"""Seeds derived from the master seed, so that every stage and fold draws its own
independent, reproducible random stream."""

from __future__ import annotations

import zlib

import numpy as np


def derive_seed(master_seed: int, *labels: str | int) -> int:
    """A seed in [1, 2**31 - 1] from the master seed and labels (stage, system, fold, ...).

    Never 0, which OpenMM reads as 'pick a seed at random'.
    """
    entropy = [master_seed] + [
        label if isinstance(label, int) else zlib.crc32(label.encode()) for label in labels
    ]
    state = np.random.SeedSequence(entropy)
    return int(state.generate_state(1)[0] % (2**31 - 2)) + 1
