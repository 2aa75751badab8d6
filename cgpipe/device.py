"""Where torch work runs: CUDA when present, else CPU; ``CGPIPE_DEVICE`` overrides."""

from __future__ import annotations

import os

import torch


def select_device(threads: int | None = None) -> torch.device:
    """The torch device for training and simulation, with CPU thread count set."""
    if threads:
        torch.set_num_threads(threads)
    name = os.environ.get("CGPIPE_DEVICE")
    if name:
        return torch.device(name)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
