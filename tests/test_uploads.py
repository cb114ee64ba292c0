"""File parameters as uploads (no dispatcher)."""
import io

import pytest

from astroquery_mmoda import params
from astroquery_mmoda.exceptions import InvalidQueryError
from astroquery_mmoda.uploads import MAX_UPLOAD_BYTES, Upload, as_upload, split_uploads


def test_paths_and_file_objects_become_uploads(tmp_path):
    path = tmp_path / "scws.txt"
    path.write_bytes(b"066500220010.001\n")
    from_path = as_upload("user_scw_list_file", path)
    assert isinstance(from_path, Upload) and from_path.multipart == ("scws.txt", b"066500220010.001\n")
    with open(path, "rb") as stream:
        assert as_upload("user_scw_list_file", stream) == from_path
    text = as_upload("dummy_file", io.StringIO("a,b\n"))
    assert text.multipart == ("dummy_file", b"a,b\n")
    assert as_upload("src_name", "scws.txt") == "scws.txt"  # text stays text
    from astropy.table import Table
    table = Table({"a": [1]})
    assert as_upload("selected_catalog", table) is table  # a Table has a read() too


def test_bad_files_are_refused_before_any_request(tmp_path):
    with pytest.raises(InvalidQueryError, match="cannot read the file"):
        as_upload("dummy_file", tmp_path / "missing")
    with pytest.raises(InvalidQueryError, match="larger than"):
        as_upload("dummy_file", io.BytesIO(b"x" * (MAX_UPLOAD_BYTES + 1)))
    odd = type("Odd", (), {"read": lambda self, n=-1: 3, "readable": lambda self: True})()
    with pytest.raises(InvalidQueryError, match="gave int"):
        as_upload("dummy_file", odd)


def test_encode_keeps_uploads_out_of_the_text_encoding(tmp_path):
    upload = Upload("c.ecsv", b"x")
    wire = params.encode({"p": 5, "flag": True, "user_catalog_file": upload})
    assert wire == {"p": "5", "flag": "True", "user_catalog_file": upload}
    assert split_uploads(wire) == ({"p": "5", "flag": "True"}, {"user_catalog_file": upload})
    assert params.wire_value("user_catalog_file", io.BytesIO(b"x"), None).sha256 == upload.sha256


def test_selected_catalog_none_is_left_out():
    assert params.convert_unchecked({"selected_catalog": None, "p": None}) == {"p": None}
    assert params.check_params("isgri", "isgri_spectrum", {"selected_catalog": None},
                               [{"name": "selected_catalog", "unit": None}]) == {}
