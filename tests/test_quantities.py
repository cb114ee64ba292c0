"""The values of the INTEGRAL helpers (`astroquery_mmoda.quantities`): sky, time, energy, bins, ScWs."""
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time

from astroquery_mmoda import quantities
from astroquery_mmoda.exceptions import InvalidQueryError
from astroquery_mmoda.integral import INSTRUMENTS


def test_sky_position():
    position = quantities.sky_position("83.63 22.01")
    assert position.ra.deg == pytest.approx(83.63) and position.dec.deg == pytest.approx(22.01)
    galactic = SkyCoord(0, 0, unit="deg", frame="galactic")
    assert quantities.sky_position(galactic).frame.name == "icrs"
    assert quantities.sky_position("05h34m31.9s +22d00m52s").ra.deg == pytest.approx(83.633, abs=1e-3)
    with pytest.raises(InvalidQueryError, match="'Crab nebula' are not coordinates"):
        quantities.sky_position("Crab nebula")
    with pytest.raises(InvalidQueryError, match="must be a SkyCoord or a string, not float"):
        quantities.sky_position(83.63)
    with pytest.raises(InvalidQueryError, match="a single position"):
        quantities.sky_position(SkyCoord([1, 2], [3, 4], unit="deg"))


def test_names_are_resolved_by_sesame(monkeypatch):
    from pathlib import Path

    from astropy.coordinates import name_resolve

    recorded = Path(__file__).parent / "data" / "sesame_crab.txt"  # a Sesame answer for "Crab"
    asked = []
    monkeypatch.setattr(name_resolve, "download_file",
                        lambda url, *args, **kwargs: asked.append(url) or str(recorded))
    position = quantities.sky_position("Crab")
    assert (position.ra.deg, position.dec.deg) == pytest.approx((83.63308333, 22.0145))
    assert asked and asked[0].endswith("?Crab")
    assert quantities.sky_position("83.63 22.01").ra.deg == pytest.approx(83.63)  # no Sesame for numbers
    assert len(asked) == 1


def test_a_name_sesame_cannot_resolve_says_so():
    with pytest.raises(InvalidQueryError, match="'Crab nebula' are not coordinates, and Sesame could not"):
        quantities.sky_position("Crab nebula")


def test_time_range():
    start, end = quantities.time_range("2003-03-15", Time("2003-03-16"))
    assert (start.isot, end.isot) == ("2003-03-15T00:00:00.000", "2003-03-16T00:00:00.000")
    with pytest.raises(InvalidQueryError, match="start_time='yesterday' is not a time"):
        quantities.time_range("yesterday", "2003-03-16")
    with pytest.raises(InvalidQueryError, match=r"start_time \(2003-03-16T00:00:00.000\) must be before"):
        quantities.time_range("2003-03-16", "2003-03-15")


def test_energy_range():
    isgri = INSTRUMENTS["isgri"]
    assert quantities.energy_range((30, 80) * u.keV, isgri) == (30.0, 80.0)
    assert quantities.energy_range([0.03, 0.08] * u.MeV, isgri) == pytest.approx((30.0, 80.0))
    with pytest.raises(InvalidQueryError, match="must be a Quantity"):
        quantities.energy_range((30, 80), isgri)
    with pytest.raises(InvalidQueryError, match="must be two energies"):
        quantities.energy_range(30 * u.keV, isgri)
    with pytest.raises(InvalidQueryError, match="in energy units, not s"):
        quantities.energy_range((30, 80) * u.s, isgri)
    with pytest.raises(InvalidQueryError, match=r"the lower energy \(80 keV\) must be below"):
        quantities.energy_range((80, 30) * u.keV, isgri)
    with pytest.raises(InvalidQueryError,
                       match="energy_range 5-80 keV is outside the isgri range 15-800 keV"):
        quantities.energy_range((5, 80) * u.keV, isgri)


def test_angle_deg():
    assert quantities.angle_deg(60 * u.arcmin, "radius") == pytest.approx(1.0)
    assert quantities.angle_deg(8, "radius") == 8.0  # degrees, as astroquery modules take it
    with pytest.raises(InvalidQueryError, match="radius must be an angle Quantity"):
        quantities.angle_deg("8", "radius")
    with pytest.raises(InvalidQueryError, match="radius must be an angle, not s"):
        quantities.angle_deg(8 * u.s, "radius")
    with pytest.raises(InvalidQueryError, match="between 0 and 180 deg, not 200 deg"):
        quantities.angle_deg(200 * u.deg, "radius")


def test_time_bin():
    isgri = INSTRUMENTS["isgri"]
    assert quantities.time_bin(1 * u.ks, isgri) == 1000.0
    with pytest.raises(InvalidQueryError, match="time_bin must be a time Quantity"):
        quantities.time_bin(100, isgri)
    with pytest.raises(InvalidQueryError, match="time_bin must be positive, not -1 s"):
        quantities.time_bin(-1 * u.s, isgri)
    with pytest.raises(InvalidQueryError, match="time_bin 1 s is below the isgri minimum of 20 s"):
        quantities.time_bin(1 * u.s, isgri)
    with pytest.raises(InvalidQueryError, match="time_bin 5000 s is above the isgri maximum of 4000 s"):
        quantities.time_bin(5000 * u.s, isgri)


def test_science_windows():
    assert quantities.science_windows("066500220010.001, 066500230010.001") == [
        "066500220010.001", "066500230010.001"]
    assert quantities.science_windows(["066500220010.001"]) == ["066500220010.001"]
    with pytest.raises(InvalidQueryError, match="like '066500220010.001'; not '0665'"):
        quantities.science_windows(["066500220010.001", "0665"])
    with pytest.raises(InvalidQueryError, match="like '066500220010.001'$"):
        quantities.science_windows([])
