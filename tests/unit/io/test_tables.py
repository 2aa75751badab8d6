import pandas as pd
import pytest

from cgpipe.errors import InputError
from cgpipe.io import Provenance, read_provenance, read_table, write_table
from cgpipe.io.tables import read_table_metadata


def test_extra_metadata_is_written_beside_the_provenance_and_units(tmp_path):
    path = tmp_path / "t.parquet"
    table = pd.DataFrame({"mass": [12.0, 1.0]})
    write_table(path, table, Provenance("stage"), {"mass": "amu"}, {b"cgpipe.thing": b"42"})
    metadata = read_table_metadata(path)
    assert metadata[b"cgpipe.thing"] == b"42"
    assert metadata[b"cgpipe.units"] == b'{"mass": "amu"}'
    assert read_provenance(path)["stage"] == "stage"
    pd.testing.assert_frame_equal(read_table(path), table)


@pytest.mark.parametrize("key", [b"cgpipe.provenance", b"cgpipe.units", b"pandas"])
def test_extra_metadata_may_not_replace_what_the_writer_records(tmp_path, key):
    with pytest.raises(ValueError, match="table metadata may not replace"):
        write_table(
            tmp_path / "t.parquet", pd.DataFrame({"a": [1]}), Provenance("s"), None, {key: b""}
        )
    assert list(tmp_path.iterdir()) == []


def test_metadata_of_a_file_that_is_not_parquet_is_an_input_error(tmp_path):
    path = tmp_path / "t.parquet"
    path.write_bytes(b"not parquet")
    with pytest.raises(InputError, match="not a readable Parquet table"):
        read_table_metadata(path)
