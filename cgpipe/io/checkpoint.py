"""The one checkpoint reader: a model checkpoint's dict, opened without unpickling objects.

A cgpipe checkpoint (``model.pt``, written by :func:`cgpipe.models.save_model`) is the
zip archive of ``torch.save`` holding a dict of plain types: ``format_version``, ``kind``
(the model's registered name), ``hparams`` (its constructor arguments as JSON text),
``state_dict``, ``provenance`` (JSON text) and ``temperature`` (K, the temperature the
model was trained at; :func:`trained_temperature` reads it without building the model).
:func:`cgpipe.models.load_model` checks the format and the kind.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

from cgpipe import keys
from cgpipe.errors import InputError

CHECKPOINT_KEYS = ("hparams", "state_dict")


def _first_line(error: BaseException) -> str:
    # torch's messages run over many lines of advice; the first says what went wrong.
    lines = str(error).strip().splitlines()
    return lines[0].strip() if lines else type(error).__name__


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The dict stored in a cgpipe checkpoint, its tensors on the CPU.

    Parameters
    ----------
    path
        The checkpoint file.

    Returns
    -------
    dict
        At least ``hparams`` and ``state_dict``; ``provenance`` where it was recorded.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    InputError
        The file is not a cgpipe checkpoint (random bytes, a truncated file, another
        format, a zip archive of something else).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    # torch.save writes a zip archive: anything else is refused before torch parses it,
    # so that random or truncated bytes never reach an unpickler.
    if not zipfile.is_zipfile(path):
        raise InputError(f"{path}: not a cgpipe checkpoint (not the zip archive of torch.save)")
    import torch  # here, so that importing cgpipe.io stays light

    try:
        # On the CPU whatever device wrote it: the caller moves the model where it runs.
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch's loader raises assorted types on foreign archives
        raise InputError(f"{path}: not a cgpipe checkpoint ({_first_line(error)})") from error
    if not isinstance(checkpoint, dict) or not all(key in checkpoint for key in CHECKPOINT_KEYS):
        raise InputError(f"{path}: not a cgpipe checkpoint (no {'/'.join(CHECKPOINT_KEYS)})")
    return checkpoint


def trained_temperature(checkpoint: dict[str, Any]) -> float | None:
    """The temperature (K) a checkpoint's model was trained at, or None where it is not
    recorded.

    Checkpoints written before the ``temperature`` field existed are read from their
    provenance, whose configuration the train stage has always recorded with the
    temperature; a checkpoint written outside the train stage may have neither.
    """
    if keys.TEMPERATURE in checkpoint:
        return float(checkpoint[keys.TEMPERATURE])
    try:
        config = json.loads(checkpoint.get(keys.PROVENANCE, "{}")).get("config", {})
    except (TypeError, ValueError, AttributeError):
        return None
    temperature = config.get(keys.TEMPERATURE) if isinstance(config, dict) else None
    return float(temperature) if isinstance(temperature, int | float) else None
