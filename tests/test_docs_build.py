"""The documentation builds with warnings as errors (as ``tox -e build_docs`` does)."""
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"


@pytest.mark.skipif(not DOCS.exists(), reason="the docs folder is not part of an installed package")
def test_docs_build_without_warnings(tmp_path):
    pytest.importorskip("sphinx_astropy", reason="the docs need the [test] or [docs] extra")
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-5000:]
    assert (tmp_path / "html" / "api.html").exists()
    assert "MmodaClass" in (tmp_path / "html" / "api.html").read_text() or any(
        "MmodaClass" in page.read_text() for page in (tmp_path / "html" / "api").glob("*.html"))
