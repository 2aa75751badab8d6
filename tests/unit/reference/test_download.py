"""Checksummed downloads against a local HTTP server: good files, corrupt ones, cut
transfers, dead servers, and the SHA-256 pin for files without a published checksum."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from cgpipe.reference import download
from cgpipe.reference.download import (
    DownloadError,
    fetch,
    fetch_mdshare,
    mdcath_file,
    mdshare_files,
    pin_path,
)

PAYLOAD = bytes(range(256)) * 64  # 16 KiB, enough for several chunks


def _md5(data: bytes) -> str:
    return "md5:" + hashlib.md5(data).hexdigest()


def _assert_nothing_left(folder: Path, *allowed: str) -> None:
    """No file in the download folder but the ones named (no partial, no temporary)."""
    leftovers = sorted(p.name for p in folder.iterdir()) if folder.exists() else []
    assert leftovers == sorted(allowed)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_good_file_is_verified_and_recorded(http_server, tmp_path):
    (http_server.root / "data.bin").write_bytes(PAYLOAD)
    destination = tmp_path / "cache" / "sub" / "data.bin"

    record = fetch(
        http_server.url("data.bin"),
        destination,
        known_hash=_md5(PAYLOAD),
        size=len(PAYLOAD),
        retries=0,
    )

    assert destination.read_bytes() == PAYLOAD
    assert record.path == destination
    assert record.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert record.known_hash == _md5(PAYLOAD) and record.pinned is False
    assert record.to_dict() == {
        "url": http_server.url("data.bin"),
        "path": str(destination),
        "sha256": hashlib.sha256(PAYLOAD).hexdigest(),
        "known_hash": _md5(PAYLOAD),
        "pinned": False,
    }
    # a publisher's checksum needs no pin
    _assert_nothing_left(destination.parent, "data.bin")


def test_wrong_checksum_is_refused_and_nothing_stays(http_server, tmp_path):
    (http_server.root / "data.bin").write_bytes(PAYLOAD)
    destination = tmp_path / "cache" / "data.bin"
    wrong = "md5:" + "0" * 32

    with pytest.raises(DownloadError) as caught:
        fetch(http_server.url("data.bin"), destination, known_hash=wrong, retries=0)

    message = str(caught.value)
    assert http_server.url("data.bin") in message and str(destination) in message
    assert f"checksum mismatch: expected {wrong}, got {_md5(PAYLOAD)}" in message
    _assert_nothing_left(destination.parent)


def test_wrong_size_is_refused_and_nothing_stays(http_server, tmp_path):
    (http_server.root / "data.bin").write_bytes(PAYLOAD)
    destination = tmp_path / "cache" / "data.bin"

    with pytest.raises(DownloadError, match=f"expected {len(PAYLOAD) + 1} bytes, got"):
        fetch(
            http_server.url("data.bin"),
            destination,
            known_hash=_md5(PAYLOAD),
            size=len(PAYLOAD) + 1,
            retries=0,
        )
    _assert_nothing_left(destination.parent)


@pytest.mark.parametrize("known_hash", [None, "publisher"])
def test_truncated_transfer_is_refused_and_nothing_stays(http_server, tmp_path, known_hash):
    (http_server.root / "data.bin").write_bytes(PAYLOAD)
    http_server.truncate.add("data.bin")
    destination = tmp_path / "cache" / "data.bin"

    with pytest.raises(DownloadError) as caught:
        fetch(
            http_server.url("data.bin"),
            destination,
            known_hash=_md5(PAYLOAD) if known_hash else None,
            retries=0,
        )

    message = str(caught.value)
    assert http_server.url("data.bin") in message and str(destination) in message
    assert "transfer truncated" in message
    assert f"{len(PAYLOAD) // 2} more expected" in message
    # no partial file, no temporary file, and no pin of a partial file
    _assert_nothing_left(destination.parent)


def test_relative_destination_is_recorded_as_given(http_server, tmp_path, monkeypatch):
    (http_server.root / "data.bin").write_bytes(PAYLOAD)
    monkeypatch.chdir(tmp_path)
    record = fetch(http_server.url("data.bin"), Path("resources/data.bin"), retries=0)
    assert record.path == Path("resources/data.bin")
    assert (tmp_path / "resources" / "data.bin").read_bytes() == PAYLOAD


def test_a_transfer_cut_once_is_retried(http_server, tmp_path):
    (http_server.root / "data.bin").write_bytes(PAYLOAD)
    http_server.truncate_once.add("data.bin")
    destination = tmp_path / "cache" / "data.bin"

    record = fetch(http_server.url("data.bin"), destination, known_hash=_md5(PAYLOAD), retries=1)

    assert len(http_server.requests) == 2  # pooch waits 1 s before the second attempt
    assert record.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    _assert_nothing_left(destination.parent, "data.bin")


def test_refused_connection(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/data.bin"
    destination = tmp_path / "cache" / "data.bin"

    with pytest.raises(DownloadError) as caught:
        fetch(url, destination, known_hash=_md5(PAYLOAD), retries=0)

    assert url in str(caught.value) and "connection refused" in str(caught.value)
    assert not destination.exists()


def test_missing_file_reports_the_http_status(http_server, tmp_path):
    destination = tmp_path / "cache" / "absent.bin"
    with pytest.raises(DownloadError, match="HTTP error 404"):
        fetch(http_server.url("absent.bin"), destination, retries=0)
    _assert_nothing_left(destination.parent)


def test_first_download_pins_and_a_changed_file_is_refused_later(http_server, tmp_path):
    (http_server.root / "domain.h5").write_bytes(PAYLOAD)
    destination = tmp_path / "cache" / "domain.h5"
    digest = hashlib.sha256(PAYLOAD).hexdigest()

    record = fetch(http_server.url("domain.h5"), destination, retries=0)

    assert record.pinned is True and record.known_hash is None and record.sha256 == digest
    assert pin_path(destination).read_text().split() == [digest, "domain.h5"]

    # the cache is cleared, and the server now hands out something else
    destination.unlink()
    (http_server.root / "domain.h5").write_bytes(PAYLOAD[::-1])
    with pytest.raises(DownloadError) as caught:
        fetch(http_server.url("domain.h5"), destination, retries=0)

    changed = hashlib.sha256(PAYLOAD[::-1]).hexdigest()
    assert f"checksum mismatch: expected sha256:{digest}, got sha256:{changed}" in str(caught.value)
    # the pin survives (it is what refuses the changed file); the file does not
    _assert_nothing_left(destination.parent, "domain.h5.sha256")

    # the same content as pinned is accepted again
    (http_server.root / "domain.h5").write_bytes(PAYLOAD)
    again = fetch(http_server.url("domain.h5"), destination, retries=0)
    assert again.sha256 == digest and again.pinned is True


def test_a_corrupt_cached_file_is_replaced_against_the_pin(http_server, tmp_path):
    (http_server.root / "domain.h5").write_bytes(PAYLOAD)
    destination = tmp_path / "cache" / "domain.h5"
    fetch(http_server.url("domain.h5"), destination, retries=0)

    destination.write_bytes(b"bit rot")
    record = fetch(http_server.url("domain.h5"), destination, retries=0)

    assert destination.read_bytes() == PAYLOAD
    assert record.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert len(http_server.requests) == 2

    # pooch leaves a stale file in place when its replacement fails; fetch removes it
    destination.write_bytes(b"bit rot")
    (http_server.root / "domain.h5").write_bytes(b"changed upstream")
    with pytest.raises(DownloadError, match="checksum mismatch"):
        fetch(http_server.url("domain.h5"), destination, retries=0)
    _assert_nothing_left(destination.parent, "domain.h5.sha256")


def test_a_good_cached_file_is_not_downloaded_again(http_server, tmp_path):
    (http_server.root / "data.bin").write_bytes(PAYLOAD)
    (http_server.root / "pinned.bin").write_bytes(PAYLOAD)
    cache = tmp_path / "cache"
    fetch(http_server.url("data.bin"), cache / "data.bin", known_hash=_md5(PAYLOAD), retries=0)
    fetch(http_server.url("pinned.bin"), cache / "pinned.bin", retries=0)
    assert len(http_server.requests) == 2

    first = fetch(
        http_server.url("data.bin"), cache / "data.bin", known_hash=_md5(PAYLOAD), retries=0
    )
    second = fetch(http_server.url("pinned.bin"), cache / "pinned.bin", retries=0)

    assert len(http_server.requests) == 2
    assert first.sha256 == second.sha256 == hashlib.sha256(PAYLOAD).hexdigest()


def test_fetch_mdshare_checks_the_catalogue_md5_and_size(http_server, tmp_path, monkeypatch):
    pdb = b"ATOM      1  N   ALA A   1       0.000   0.000   0.000  1.00  0.00           N\nEND\n"
    (http_server.root / "alanine-dipeptide-nowater.pdb").write_bytes(pdb)
    monkeypatch.setitem(
        download.MDSHARE_CATALOGUE,
        "alanine-dipeptide-nowater.pdb",
        (hashlib.md5(pdb).hexdigest(), len(pdb)),
    )

    record = fetch_mdshare(
        "alanine-dipeptide-nowater.pdb", tmp_path / "mdshare", base_url=http_server.url("")
    )

    assert record.known_hash == _md5(pdb) and record.path.read_bytes() == pdb
    with pytest.raises(ValueError, match="not in cgpipe's mdshare catalogue"):
        fetch_mdshare("other.xtc", tmp_path / "mdshare", base_url=http_server.url(""))


def test_mdshare_catalogue_names():
    assert mdshare_files("alanine-dipeptide", 2) == [
        "alanine-dipeptide-nowater.pdb",
        "alanine-dipeptide-0-250ns-nowater.xtc",
        "alanine-dipeptide-1-250ns-nowater.xtc",
    ]
    assert all(name in download.MDSHARE_CATALOGUE for name in mdshare_files("alanine-dipeptide", 3))
    with pytest.raises(ValueError, match="holds 3 trajectories; asked for 4"):
        mdshare_files("alanine-dipeptide", 4)
    with pytest.raises(ValueError, match="unknown mdshare dataset 'chignolin'"):
        mdshare_files("chignolin", 1)


def test_mdcath_file_names_and_domain_validation():
    assert mdcath_file("1r9lA02") == "mdcath_dataset_1r9lA02.h5"
    for bad in ("", "../etc", "1r9l A02", "1r9lA02.h5"):
        with pytest.raises(ValueError, match="not a CATH domain id"):
            mdcath_file(bad)


def test_malformed_known_hash_is_a_caller_error(tmp_path):
    with pytest.raises(ValueError, match="not of the form"):
        fetch("http://127.0.0.1:1/x", tmp_path / "x", known_hash="crc32:zz", retries=0)


def test_the_schema_defaults_are_the_publishers_addresses():
    from cgpipe.config import load_config

    defaults = load_config(None)["download"]
    # The publishers' addresses (mdshare 0.4.2's catalogue; mdCATH's Hugging Face dataset).
    assert defaults["mdshare_url"] == "http://ftp.imp.fu-berlin.de/pub/cmb-data/"
    assert defaults["mdcath_url"].startswith("https://huggingface.co/datasets/compsciencelab/")
