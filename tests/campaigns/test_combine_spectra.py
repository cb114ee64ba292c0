import numpy as np
import pytest
from astropy.io import fits
from astroquery.exceptions import InvalidQueryError

from astroquery_mmoda.campaigns.combine_spectra import (SpectrumCombiner, SpectrumSetCombiner,
                                                        combine_spectra)
from astroquery_mmoda.integral import Spectrum, SpectrumSet

NCHAN = 8


def make_part(rate, exposure, *, error=None, sys_err=0.0, quality=0, area=100.0, matrix_scale=1.0,
              nchan=NCHAN, variable_rmf=False, tstart=5000.0):
    rate = np.broadcast_to(np.asarray(rate, float), (nchan,))
    error = np.broadcast_to(np.asarray(error if error is not None else 0.1, float), (nchan,))
    spectrum = fits.BinTableHDU.from_columns([
        fits.Column("CHANNEL", "1I", array=np.arange(nchan)),
        fits.Column("RATE", "1E", unit="count/s", array=rate),
        fits.Column("SYS_ERR", "1E", array=np.full(nchan, sys_err)),
        fits.Column("STAT_ERR", "1E", unit="count/s", array=error),
        fits.Column("QUALITY", "1I", array=np.broadcast_to(quality, (nchan,)))], name="ISGR-EVTS-SPE")
    spectrum.header.update(HDUCLASS="OGIP", HDUCLAS1="SPECTRUM", EXPOSURE=exposure, ONTIME=exposure * 1.25,
                           TSTART=tstart, TSTOP=tstart + exposure / 86400.0)
    energies = np.linspace(20.0, 100.0, nchan + 1)
    arf = fits.BinTableHDU.from_columns([
        fits.Column("ENERG_LO", "1E", array=energies[:-1]), fits.Column("ENERG_HI", "1E", array=energies[1:]),
        fits.Column("SPECRESP", "1E", array=np.full(nchan, area))], name="ISGR-ARF.-RSP")
    matrix = np.eye(nchan) * matrix_scale
    if variable_rmf:
        column = fits.Column("MATRIX", "PE()", array=[row for row in matrix])
    else:
        column = fits.Column("MATRIX", f"{nchan}E", array=matrix)
    rmf = fits.BinTableHDU.from_columns([
        fits.Column("ENERG_LO", "1E", array=energies[:-1]), fits.Column("N_CHAN", "1I",
                                                                        array=np.full(nchan, nchan)),
        column], name="ISGR-RMF.-RSP")
    ebounds = fits.BinTableHDU.from_columns([fits.Column("CHANNEL", "1I", array=np.arange(nchan))],
                                            name="EBOUNDS")
    return Spectrum("GX 339-4", fits.HDUList([fits.PrimaryHDU(), spectrum]),
                    fits.HDUList([fits.PrimaryHDU(), arf]),
                    fits.HDUList([fits.PrimaryHDU(), rmf, ebounds]))


def test_exposure_is_summed_and_counts_are_conserved():
    exposures = [1000.0, 2500.0, 1500.0]
    rates = [np.linspace(1, 2, NCHAN), np.linspace(3, 1, NCHAN), np.full(NCHAN, 0.5)]
    total = combine_spectra([(f"j{i}", make_part(r, e, tstart=5000.0 + i))
                             for i, (r, e) in enumerate(zip(rates, exposures))])
    spec = total.spectrum[1]
    assert spec.header["EXPOSURE"] == pytest.approx(5000.0)
    assert spec.header["ONTIME"] == pytest.approx(6250.0)
    assert spec.header["TSTART"] == pytest.approx(5000.0)
    assert spec.header["TSTOP"] == pytest.approx(5002.0 + 1500.0 / 86400.0)
    assert spec.header["NCOMBINE"] == 3
    assert [h for h in spec.header["HISTORY"]] == ["combined: job j0", "combined: job j1", "combined: job j2"]
    counts = sum(r * e for r, e in zip(rates, exposures))
    np.testing.assert_allclose(spec.data["RATE"] * spec.header["EXPOSURE"], counts, rtol=1e-6)


def test_known_rate_is_recovered_and_errors_add_in_quadrature():
    rng = np.random.default_rng(42)
    truth, sigma = 2.0, 0.4
    parts = [(f"j{i}", make_part(truth + rng.normal(size=NCHAN) * sigma, 1000.0, error=sigma))
             for i in range(25)]
    spec = combine_spectra(parts).spectrum[1]
    np.testing.assert_allclose(spec.data["STAT_ERR"], sigma / 5, rtol=1e-6)
    assert np.all(np.abs(spec.data["RATE"] - truth) < 4 * sigma / 5)
    chi2 = np.sum(((spec.data["RATE"] - truth) / spec.data["STAT_ERR"]) ** 2)
    assert chi2 < 30  # 8 channels


def test_systematics_quality_and_responses_are_weighted_by_exposure():
    combiner = SpectrumCombiner()
    combiner.add(make_part(1.0, 1000.0, sys_err=0.01, area=100.0, matrix_scale=1.0), job="a")
    combiner.add(make_part(1.0, 3000.0, sys_err=0.03, quality=1, area=200.0, matrix_scale=0.5), job="b")
    total = combiner.result()
    spec = total.spectrum[1]
    np.testing.assert_allclose(spec.data["SYS_ERR"], 0.025, rtol=1e-6)
    assert spec.data["QUALITY"].tolist() == [1] * NCHAN
    np.testing.assert_allclose(total.arf[1].data["SPECRESP"], 175.0, rtol=1e-6)
    np.testing.assert_allclose(np.diag(total.rmf[1].data["MATRIX"]), 0.625, rtol=1e-6)
    assert total.rmf[2].name == "EBOUNDS" and len(combiner) == 2 and combiner.jobs == ["a", "b"]


def test_variable_length_rmf_rows_are_averaged():
    total = combine_spectra([("a", make_part(1.0, 1000.0, variable_rmf=True)),
                             ("b", make_part(1.0, 1000.0, variable_rmf=True, matrix_scale=0.0))])
    rows = total.rmf[1].data["MATRIX"]
    assert total.rmf[1].columns["MATRIX"].format.startswith("P")
    np.testing.assert_allclose([row[i] for i, row in enumerate(rows)], 0.5)


def test_the_sum_writes_xspec_ready_files(tmp_path):
    parts = [("a", make_part(1.0, 1000.0)), ("b", make_part(3.0, 1000.0))]
    paths = combine_spectra(parts).write(tmp_path)
    with fits.open(paths["spectrum"]) as hdul:
        assert hdul[1].header["RESPFILE"] == paths["rmf"].name
        assert hdul[1].header["ANCRFILE"] == paths["arf"].name
        np.testing.assert_allclose(hdul[1].data["RATE"], 2.0)
    with fits.open(paths["rmf"]) as hdul:
        np.testing.assert_allclose(hdul[1].data["MATRIX"], np.eye(NCHAN))


def test_per_source_sums_give_a_spectrum_set():
    combiner = SpectrumSetCombiner()
    combiner.add({"GX 339-4": make_part(1.0, 100.0)}, job="a")
    combiner.add({"GX 339-4": make_part(2.0, 100.0), "Crab": make_part(5.0, 50.0)}, job="b")
    spectra = combiner.result(meta={"instrument": "isgri"})
    assert isinstance(spectra, SpectrumSet) and list(spectra) == ["Crab", "GX 339-4"]
    assert spectra["GX 339-4"].spectrum[1].header["EXPOSURE"] == pytest.approx(200.0)
    assert spectra["Crab"].spectrum[1].header["NCOMBINE"] == 1
    assert spectra.meta["instrument"] == "isgri"


@pytest.mark.parametrize("other, message", [
    (make_part(1.0, 100.0, nchan=NCHAN + 1), "its channels differ"),
    (make_part(1.0, 0.0), "has no exposure")])
def test_parts_that_cannot_be_summed_are_refused(other, message):
    combiner = SpectrumCombiner()
    combiner.add(make_part(1.0, 100.0), job="a")
    with pytest.raises(InvalidQueryError, match=message):
        combiner.add(other, job="b")


def test_nothing_to_combine_is_an_error():
    with pytest.raises(InvalidQueryError, match="no spectrum"):
        SpectrumCombiner().result()
