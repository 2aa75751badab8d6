"""Resumable runs: blocks of recorded arrays and the state after the last one.

A long stage (a reference trajectory, a CG simulation) records in blocks. After each
block its arrays, then the state to resume from, go atomically to a folder beside the
artifact (``<artifact>.checkpoint/``). A killed job started again loads the state, drops
any block written after it, and goes on; the artifact is assembled from the blocks at
the end and the folder removed. A state written for other settings (another
``fingerprint``: configuration, seed, inputs) is not resumed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from cgpipe.io.atomic import atomic_output

log = logging.getLogger(__name__)


def fingerprint(**facts: Any) -> str:
    """A digest of JSON-able ``facts``: what must match for a checkpoint to be resumed."""
    return hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()


class Blocks:
    """Blocks of arrays and the resumable state after the last one, in ``folder``.

    Parameters
    ----------
    folder
        The checkpoint folder (``<artifact>.checkpoint``).
    fingerprint
        Digest of the settings (:func:`fingerprint`); a state of another is not loaded.
    """

    STATE = "checkpoint.npz"

    def __init__(self, folder: str | Path, fingerprint: str) -> None:
        self.folder = Path(folder)
        self.fingerprint = fingerprint
        self.state_path = self.folder / self.STATE

    def load(self) -> dict[str, Any] | None:
        """The last state (its metadata and ``"state"``: bytes), or ``None`` (none, or
        one written for other settings). Blocks written after it are removed."""
        if not self.state_path.exists():
            return None
        with np.load(self.state_path, allow_pickle=False) as saved:
            meta = json.loads(str(saved["meta"]))
            state = saved["state"].tobytes()
        if meta.get("fingerprint") != self.fingerprint:
            log.warning("%s was written with other settings; starting over", self.folder)
            return None
        for stale in self.folder.glob("block_*.npy"):
            if int(stale.name.split(".")[0].split("_")[1]) >= meta["n_blocks"]:
                stale.unlink()
        return {**meta, "state": state}

    def reset(self) -> None:
        """An empty folder: nothing to resume."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder.mkdir(parents=True)

    def _path(self, number: int, name: str) -> Path:
        return self.folder / f"block_{number:06d}.{name}.npy"

    def save_block(self, number: int, **arrays: np.ndarray) -> None:
        """Write block ``number``'s arrays (each atomically; the block counts once the
        state after it is saved)."""
        for name, array in arrays.items():
            with atomic_output(self._path(number, name)) as tmp, open(tmp, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)

    def save_state(self, state: bytes, *, n_blocks: int, **meta: Any) -> None:
        """Write the state to resume from after ``n_blocks`` blocks, with JSON-able
        ``meta``."""
        meta = {**meta, "n_blocks": n_blocks, "fingerprint": self.fingerprint}
        with atomic_output(self.state_path) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, state=np.frombuffer(state, dtype=np.uint8), meta=json.dumps(meta))

    def block(self, number: int, name: str, *, mmap: bool = False) -> np.ndarray:
        """Array ``name`` of block ``number`` (memory-mapped read-only with ``mmap``)."""
        return np.load(self._path(number, name), mmap_mode="r" if mmap else None)

    def blocks(self, n_blocks: int, *names: str) -> Iterator[tuple[np.ndarray, ...]]:
        """Arrays ``names`` of blocks 0 .. n_blocks - 1, block by block."""
        for number in range(n_blocks):
            yield tuple(self.block(number, name) for name in names)

    def remove(self) -> None:
        """Delete the folder (the artifact is complete)."""
        shutil.rmtree(self.folder, ignore_errors=True)
