"""The SPI-ACS data of the test sky in the light-curve service's format."""
import numpy as np
import pytest

from astroquery_mmoda.testing.sky import acs_light_curve_text, utc_to_ijd


def test_acs_text_is_the_service_format():
    text = acs_light_curve_text("2003-03-15T23:30:10", 150)
    rows = [line.split(" ") for line in text.splitlines()]
    assert len(rows) == 6000 and {len(r) for r in rows} == {4}
    ijd = np.array([float(r[0]) for r in rows])
    assert np.allclose(np.diff(ijd) * 86400, 0.05, atol=1e-4)
    assert float(rows[0][1]) == -150.0
    assert ijd[0] == pytest.approx(utc_to_ijd("2003-03-15T23:27:40"), abs=1e-9)
    counts = np.array([int(r[2]) for r in rows])
    assert 3000 < np.median(counts) < 3400
    assert acs_light_curve_text("2003-03-15T23:30:10", 150) == text
    assert acs_light_curve_text("2001-03-15T23:30:10", 150) == "NoData"
    assert acs_light_curve_text("2002-10-16T23:59:00", 150) == "NoData"
    with pytest.raises(ValueError):
        acs_light_curve_text("2003-03-15T23:30:10", 1e5)
