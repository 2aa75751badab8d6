"""Checksummed downloads of public reference data (mdshare alanine dipeptide, mdCATH).

Every file that enters ``resources/download/`` is verified before it can be read:

- against the publisher's checksum where there is one (mdshare's catalogue gives MD5
  digests and sizes);
- otherwise against a SHA-256 digest *pinned* on first download (trust on first use,
  as in ``pooch``'s own advice): the digest is written next to the file as
  ``<name>.sha256`` (``sha256sum -c`` reads it), and a later download of the same name
  that differs is refused.

The transfer itself is ``pooch``'s: it streams into a temporary file in the destination
folder and moves it into place only once the checksum matches. On top of that,
:func:`fetch` turns every failure into one :class:`DownloadError` in plain words and
removes whatever stands at the destination, so a corrupt or partial file never stays
in the cache for a later job to read.

Datasets
--------
mdshare alanine dipeptide
    Three 250 ns trajectories of alanine dipeptide simulated in explicit water at
    300 K, one frame every 1 ps, the water removed: positions only, no forces.
    Published by the Noé group (FU Berlin) through the ``mdshare`` package; the facts
    below are those of ``mdshare`` 0.4.2's catalogue.
mdCATH
    Mirarchi et al., "mdCATH: A Large-Scale MD Dataset for Data-Driven Computational
    Biophysics", Sci. Data 11, 1299 (2024). One HDF5 file per CATH domain with
    positions and forces (CHARMM22*, TIP3P) at five temperatures, five replicas each,
    one frame per ns; hosted on the Hugging Face hub without published checksums,
    hence the pin.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import socket
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pooch
import requests
import urllib3

from cgpipe.datasets import MDCATH_FILE, MDSHARE_CATALOGUE, MDSHARE_DATASETS
from cgpipe.errors import InputError
from cgpipe.io import atomic_output, sha256sum

log = logging.getLogger(__name__)

# Seconds without a byte from the server before a transfer counts as failed (requests'
# read timeout, not a limit on the whole download).
TIMEOUT_S = 60.0

_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class DownloadError(RuntimeError):
    """A download failed; the message names the URL, the destination and the reason."""


@dataclasses.dataclass(frozen=True)
class DownloadRecord:
    """Where a downloaded file came from and how it was verified.

    Attributes
    ----------
    url
        The address it was downloaded from.
    path
        Where it lies.
    sha256
        SHA-256 hex digest of the file.
    known_hash
        The publisher's checksum it was verified against (``"md5:..."``), or ``None``
        when the publisher gives none.
    pinned
        ``True`` when the file's integrity rests on a digest pinned at its first
        download (``known_hash`` is ``None``) rather than on the publisher's.
    """

    url: str
    path: Path
    sha256: str
    known_hash: str | None
    pinned: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form, for provenance records."""
        return {
            "url": self.url,
            "path": str(self.path),
            "sha256": self.sha256,
            "known_hash": self.known_hash,
            "pinned": self.pinned,
        }


def pin_path(destination: Path) -> Path:
    """The file holding the pinned SHA-256 digest of ``destination``."""
    return destination.with_name(destination.name + ".sha256")


def mdshare_files(dataset: str, n_trajectories: int) -> list[str]:
    """File names of an mdshare dataset: the topology first, then the trajectories.

    Parameters
    ----------
    dataset
        ``"alanine-dipeptide"``: 3 trajectories of 250 ns, one frame per ps, 300 K,
        explicit water removed (positions in nm, no forces).
    n_trajectories
        How many trajectories, 1 to the number the dataset holds (3).

    Returns
    -------
    list of str
        Keys of :data:`cgpipe.datasets.MDSHARE_CATALOGUE`, relative to ``download.mdshare_url``.
    """
    if dataset not in MDSHARE_DATASETS:
        raise InputError(
            f"unknown mdshare dataset {dataset!r}; cgpipe knows {sorted(MDSHARE_DATASETS)}"
        )
    facts = MDSHARE_DATASETS[dataset]
    if not 1 <= n_trajectories <= facts.n_trajectories:
        raise InputError(
            f"mdshare dataset {dataset!r} holds {facts.n_trajectories} trajectories; "
            f"asked for {n_trajectories}"
        )
    return [facts.topology, *facts.trajectories[:n_trajectories]]


def mdcath_file(domain: str) -> str:
    """File name of one mdCATH domain, e.g. ``mdcath_dataset_1r9lA02.h5``.

    Parameters
    ----------
    domain
        CATH domain id: PDB code, chain, domain number (``"1r9lA02"``).
    """
    # The id becomes part of a URL and a file name: letters and digits only keep it from
    # climbing out of the download folder or the dataset's path.
    if not isinstance(domain, str) or not domain.isascii() or not domain.isalnum():
        raise InputError(
            f"mdCATH domain id {domain!r} is not a CATH domain id: expected letters and "
            "digits only, such as '1r9lA02' (PDB code, chain, domain number)"
        )
    return MDCATH_FILE.format(domain=domain)


def remote_file(
    source: str, filename: str, download: Mapping[str, Any]
) -> tuple[str, str | None, int | None]:
    """Where a downloaded file comes from and how it is checked: (URL, the publisher's
    hash or ``None`` (then the SHA-256 is pinned), the publisher's size or ``None``).

    Parameters
    ----------
    source
        ``mdshare`` or ``mdcath``.
    filename
        The file's name (a key of the mdshare catalogue, or an mdCATH domain file).
    download
        The ``download`` config section (base URLs).
    """
    if source == "mdshare":
        if filename not in MDSHARE_CATALOGUE:
            raise InputError(
                f"{filename!r} is not in cgpipe's mdshare catalogue; "
                f"known: {sorted(MDSHARE_CATALOGUE)}"
            )
        md5, size = MDSHARE_CATALOGUE[filename]
        return f"{download['mdshare_url'].rstrip('/')}/{filename}", f"md5:{md5}", size
    if source == "mdcath":
        return f"{download['mdcath_url'].rstrip('/')}/{filename}", None, None
    raise InputError(f"unknown download source {source!r}; known: mdshare, mdcath")


def fetch_mdshare(
    filename: str, folder: Path, *, base_url: str, retries: int = 2
) -> DownloadRecord:
    """Download one file of :data:`~cgpipe.datasets.MDSHARE_CATALOGUE` from ``base_url``
    (``download.mdshare_url``) into ``folder``, checking MD5 and size."""
    url, known_hash, size = remote_file("mdshare", filename, {"mdshare_url": base_url})
    return fetch(url, Path(folder) / filename, known_hash=known_hash, size=size, retries=retries)


def fetch_mdcath(domain: str, folder: Path, *, base_url: str, retries: int = 2) -> DownloadRecord:
    """Download one mdCATH domain file from ``base_url`` (``download.mdcath_url``) into
    ``folder``, pinning its SHA-256 on first use."""
    filename = mdcath_file(domain)
    url, _, _ = remote_file("mdcath", filename, {"mdcath_url": base_url})
    return fetch(url, Path(folder) / filename, retries=retries)


def fetch(
    url: str,
    destination: Path,
    *,
    known_hash: str | None = None,
    size: int | None = None,
    retries: int = 2,
) -> DownloadRecord:
    """Download ``url`` to ``destination`` and verify it, or verify the copy already there.

    Parameters
    ----------
    url
        HTTP(S) or FTP address of the file.
    destination
        Where the file goes; its folder is created.
    known_hash
        The publisher's checksum in ``pooch``'s form (``"md5:<hex>"``, ``"sha256:<hex>"``).
        When ``None``, the SHA-256 of the first download is pinned in
        ``<destination>.sha256`` and every later download must match it.
    size
        Expected size in bytes, checked when given.
    retries
        Further attempts after a failed transfer or checksum (pooch waits 1 s, 2 s, ...
        between them).

    Returns
    -------
    DownloadRecord
        URL, path and SHA-256 of the verified file, for provenance.

    Raises
    ------
    DownloadError
        On any failure (checksum or size mismatch, truncated transfer, refused
        connection, HTTP error, ...). Nothing is left at ``destination``; a pin file
        stays, since it is what refuses a changed file.

    Notes
    -----
    Without a publisher's checksum or ``size``, a cut transfer is caught only when the
    server announced the file's length (``Content-Length``), which requests checks.
    """
    destination = Path(destination)
    if retries < 0:
        raise ValueError(f"retries must be 0 or more, got {retries}")
    if known_hash is not None:
        _check_hash_format(known_hash)
    pin = pin_path(destination)
    try:
        expected = known_hash if known_hash is not None else _read_pin(pin)
        log.info("fetching %s to %s (expecting %s)", url, destination, expected or "a new pin")
        # pooch.create rather than pooch.retrieve: only a Pooch retries failed transfers.
        cache = pooch.create(
            path=destination.parent.absolute(),
            base_url=url.rsplit("/", 1)[0] + "/",
            registry={destination.name: expected},
            urls={destination.name: url},
            retry_if_failed=retries,
        )
        with _quiet_pooch():
            cache.fetch(
                destination.name, downloader=_downloader(url), progressbar=sys.stderr.isatty()
            )
        if size is not None and (actual := destination.stat().st_size) != size:
            raise _SizeMismatch(f"size mismatch: expected {size} bytes, got {actual} bytes")
        digest = sha256sum(destination)
        if known_hash is None and expected is None:
            with atomic_output(pin) as tmp:
                tmp.write_text(f"{digest}  {destination.name}\n")
            log.info("pinned SHA-256 %s of %s in %s", digest, destination.name, pin)
    except Exception as error:  # pooch, requests, urllib3 and the OS raise assorted types
        destination.unlink(missing_ok=True)
        raise DownloadError(
            f"downloading {url} to {destination} failed: {_describe(error)}"
        ) from error
    except BaseException:
        # An interrupt midway: pooch removes its temporary file; a file just moved into
        # place has not been checked for size or pinned yet.
        destination.unlink(missing_ok=True)
        raise
    return DownloadRecord(
        url=url, path=destination, sha256=digest, known_hash=known_hash, pinned=known_hash is None
    )


class _SizeMismatch(ValueError):
    pass


def _check_hash_format(known_hash: str) -> None:
    algorithm, _, digest = known_hash.rpartition(":")
    algorithm = algorithm or "sha256"  # pooch reads a bare digest as SHA-256
    if algorithm.lower() not in ("md5", "sha1", "sha256", "sha512") or not re.fullmatch(
        r"[0-9a-fA-F]+", digest
    ):
        raise InputError(
            f"known_hash {known_hash!r} is not of the form 'md5:<hex>' or 'sha256:<hex>'"
        )


def _read_pin(pin: Path) -> str | None:
    if not pin.exists():
        return None
    fields = pin.read_text().split()
    if not fields or not _HEX_DIGEST.fullmatch(fields[0].lower()):
        raise _PinUnreadable(
            f"the pin file {pin} holds no SHA-256 digest; delete it to pin the file afresh"
        )
    return f"sha256:{fields[0].lower()}"


class _PinUnreadable(ValueError):
    pass


def _downloader(url: str) -> Any:
    if url.startswith(("http://", "https://")):
        return pooch.HTTPDownloader(progressbar=sys.stderr.isatty(), timeout=TIMEOUT_S)
    return None  # pooch picks FTP or DOI by the URL's scheme


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    # pooch's logger writes to stderr through its own handler, outside the logging
    # hierarchy that the command line configures; cgpipe logs the same facts itself.
    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _causes(error: BaseException) -> list[BaseException]:
    """The error and everything behind it: chained causes, urllib3 reasons, arguments."""
    seen: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop(0)
        if any(current is other for other in seen):
            continue
        seen.append(current)
        for candidate in (
            current.__cause__,
            current.__context__,
            getattr(current, "reason", None),
            *current.args,
        ):
            if isinstance(candidate, BaseException):
                pending.append(candidate)
    return seen


def _describe(error: BaseException) -> str:
    """Say in plain words why a download failed."""
    causes = _causes(error)

    def first(kind: type[BaseException] | tuple[type[BaseException], ...]) -> Any:
        return next((cause for cause in causes if isinstance(cause, kind)), None)

    if found := first((_SizeMismatch, _PinUnreadable)):
        return str(found)
    if (found := first(ValueError)) and (
        match := re.search(r"expected (\S+) but got (\w+)", str(found))
    ):
        expected, got = match.groups()
        algorithm = expected.rpartition(":")[0] or "sha256"
        return f"checksum mismatch: expected {expected}, got {algorithm}:{got}"
    if (found := first(requests.exceptions.HTTPError)) and found.response is not None:
        return f"HTTP error {found.response.status_code} {found.response.reason}"
    if found := first(urllib3.exceptions.IncompleteRead):
        return (
            f"transfer truncated: the connection closed after {found.partial} bytes, "
            f"{found.expected} more expected"
        )
    if found := first(requests.exceptions.ChunkedEncodingError):
        return f"transfer truncated: the connection broke before the whole file arrived ({found})"
    if first(ConnectionRefusedError):
        return "connection refused (no server listening at that address and port)"
    if first(ConnectionResetError):
        return "connection reset by the server"
    if first((socket.gaierror, urllib3.exceptions.NameResolutionError)):
        return "host not found (name resolution failed; offline?)"
    if first((requests.exceptions.Timeout, TimeoutError, socket.timeout)):
        return f"timed out (no data for {TIMEOUT_S:g} s)"
    if found := first(requests.exceptions.ConnectionError):
        return f"connection failed ({found})"
    return f"{type(error).__name__}: {error}"


def run(source: str, output: Path, *, cfg: Mapping[str, Any]) -> DownloadRecord:
    """Download the file of ``source`` named ``output.name`` to ``output``, checked as
    :func:`remote_file` says; a failed download is an input error (the URL, the hash or
    the network is the user's to check), reported in one line."""
    from cgpipe.stages import write_resolved_config

    url, known_hash, size = remote_file(source, output.name, cfg["download"])
    try:
        record = fetch(
            url, output, known_hash=known_hash, size=size, retries=cfg["download"]["retries"]
        )
    except DownloadError as error:
        raise InputError(str(error)) from error
    write_resolved_config(output, cfg)
    return record
