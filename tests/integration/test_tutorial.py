"""The README's tutorial command, offline against the local INTEGRAL test sky."""
import pytest
from astropy.io import fits
from astropy.timeseries import TimeSeries

from astroquery_mmoda import tutorial
from astroquery_mmoda.testing import default_venv_dir

pytestmark = [pytest.mark.integration, pytest.mark.integral]


def test_tutorial_command_runs_offline(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ODA_TOKEN", raising=False)
    # A fresh home, but the dispatcher's environment stays the cached one (no re-install).
    monkeypatch.setenv("XDG_CACHE_HOME", str(default_venv_dir().parent.parent))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.chdir(tmp_path)
    assert tutorial.main(["-o", "out"]) == 0
    printed = capsys.readouterr().out
    assert "Using a local MMODA dispatcher" in printed and "no MMODA token" in printed
    assert "4U 1700-377" in printed and "OAO 1657-415" in printed  # the catalog
    out = tmp_path / "out"
    for name in ("spi_acs_lightcurve.png", "isgri_mosaic.png", "isgri_spectrum.png",
                 "isgri_lightcurve_4U_1700-377.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with fits.open(out / "spectra" / "GX_354-0_spectrum.fits") as spectrum:
        assert spectrum[1].header["RESPFILE"] == "GX_354-0_rmf.fits"
    assert not list(out.glob("spectra/NEW_1*"))  # filtered out
    series = TimeSeries.read(out / "isgri_lightcurve_4U_1700-377.ecsv")
    assert len(series) > 10 and str(series["rate"].unit) == "ct / s"


def test_public_without_token_says_so(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("ODA_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.chdir(tmp_path)
    assert tutorial.main(["--public"]) == 3
    assert "no MMODA token" in capsys.readouterr().err


def test_tutorial_never_writes_through_a_planted_link(tmp_path, monkeypatch):
    from astroquery_mmoda.writing import UnsafeTargetError

    monkeypatch.delenv("ODA_TOKEN", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    victim = tmp_path / "victim"
    victim.write_text("precious")
    (tmp_path / "out" / "spi_acs_lightcurve.ecsv").symlink_to(victim)
    with pytest.raises(UnsafeTargetError, match="symbolic link"):
        tutorial.main(["-o", "out", "--local"])
    assert victim.read_text() == "precious"
