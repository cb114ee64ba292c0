"""Systematic errors and grouping written the way XSPEC reads them (OGIP columns)."""
import numpy as np
import pytest
from astropy.io import fits

from astroquery_mmoda.exceptions import InvalidQueryError
from astroquery_mmoda.integral_results import Spectrum, SpectrumSet
from astroquery_mmoda.xspec import group_min_counts, set_xspec_options


def spectrum_hdu(rates, exposure=100.0, sys_err=True):
    columns = [fits.Column("CHANNEL", "1I", array=np.arange(len(rates))),
               fits.Column("RATE", "1E", unit="count/s", array=np.asarray(rates, dtype=float))]
    if sys_err:
        columns.append(fits.Column("SYS_ERR", "1E", array=np.zeros(len(rates))))
    hdu = fits.BinTableHDU.from_columns(columns, name="ISGR-EVTS-SPE")
    hdu.header.update(HDUCLAS1="SPECTRUM", EXPOSURE=exposure)
    return hdu


def test_groups_hold_the_minimum_and_a_short_last_one_joins_the_one_before():
    counts = np.array([5, 5, 20, 1, 1, 30, 2, 3])
    grouping = group_min_counts(counts, 10)
    starts = np.flatnonzero(grouping == 1)
    sums = np.add.reduceat(counts, starts)
    assert grouping[0] == 1 and set(grouping) == {1, -1}
    assert (sums >= 10).all() and sums.sum() == counts.sum()
    assert group_min_counts([1, 2], 100).tolist() == [1, -1]  # never enough: one group


def test_systematics_and_grouping_are_columns_of_a_copy():
    hdu = spectrum_hdu([0.05, 0.05, 0.2, 0.01, 0.3], sys_err=False)
    new = set_xspec_options(hdu, systematic_fraction=0.02, min_counts=10)
    assert new.data["SYS_ERR"].tolist() == pytest.approx([0.02] * 5)
    assert new.data["GROUPING"].tolist() == [1, -1, 1, 1, -1]
    assert "SYS_ERR" not in hdu.columns.names and new.header["EXPOSURE"] == 100.0
    with pytest.raises(InvalidQueryError, match="systematic_fraction must be a number in"):
        set_xspec_options(hdu, systematic_fraction=1.5)
    with pytest.raises(InvalidQueryError, match="min_counts must be a positive number"):
        set_xspec_options(hdu, min_counts=0)


def test_written_spectra_carry_them(tmp_path):
    empty = fits.HDUList([fits.PrimaryHDU()])
    spectrum = Spectrum("GX 339-4", fits.HDUList([fits.PrimaryHDU(), spectrum_hdu([0.5] * 6)]), empty, empty)
    paths = SpectrumSet({"GX 339-4": spectrum}).write(tmp_path, systematic_fraction=0.01,
                                                      min_counts=100)["GX 339-4"]
    with fits.open(paths["spectrum"]) as written:
        table = written[1]
        assert table.data["SYS_ERR"].tolist() == pytest.approx([0.01] * 6)  # replaced, not added twice
        assert table.data["GROUPING"].tolist() == [1, -1, 1, -1, 1, -1]
        assert table.header["RESPFILE"] == paths["rmf"].name
    assert spectrum.spectrum[1].data["SYS_ERR"].tolist() == [0.0] * 6  # the result is left as it was
