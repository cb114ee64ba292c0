"""INTEGRAL requests and results: `astroquery_mmoda.integral` without a dispatcher."""
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astroquery.exceptions import NoResultsWarning

from astroquery_mmoda import integral
from astroquery_mmoda.exceptions import InvalidQueryError

CRAB = SkyCoord(83.63, 22.01, unit="deg")
TIMES = {"start_time": "2003-03-15T00:00:00", "end_time": "2003-03-16T00:00:00"}


class Products(dict):
    """The little of a ProductSet that the result shaping reads."""

    def __init__(self, items):
        super().__init__((name, value) for name, (kind, value) in items.items())
        self.kind = {name: kind for name, (kind, _) in items.items()}
        self.meta = {name: {} for name in items}


def test_public_names_of_the_results_stay_importable_from_integral():
    from astroquery_mmoda import integral_results

    for name in ("LightCurveSet", "SpectrumSet", "Spectrum", "select_sources", "lightcurve_to_timeseries"):
        assert getattr(integral, name) is getattr(integral_results, name)


def test_image_request_parameters_and_meta():
    product, params, meta = integral.integral_params(
        "isgri", "image", CRAB, radius=8 * u.deg, max_pointings=10, osa_version="OSA11.2",
        scw_list="066500220010.001", detection_threshold=7, **TIMES)
    assert product == "isgri_image"
    assert params == {"RA": 83.63, "DEC": 22.01, "T1": "2003-03-15T00:00:00.000",
                      "T2": "2003-03-16T00:00:00.000", "E1_keV": 30.0, "E2_keV": 80.0,
                      "radius": 8.0, "max_pointings": 10, "osa_version": "OSA11.2",
                      "scw_list": ["066500220010.001"], "detection_threshold": 7.0}
    assert meta == {"instrument": "isgri", "start_time": "2003-03-15T00:00:00.000",
                    "end_time": "2003-03-16T00:00:00.000", "ra": 83.63, "dec": 22.01,
                    "E1_keV": 30.0, "E2_keV": 80.0}


def test_spi_acs_light_curve_has_no_energy_band():
    product, params, meta = integral.integral_params("spi_acs", "lightcurve", CRAB,
                                                     time_bin=0.5 * u.s, **TIMES)
    assert product == "spi_acs_lc"
    assert params["time_bin"] == 0.5 and "E1_keV" not in params and "E1_keV" not in meta
    with pytest.raises(InvalidQueryError, match="spi_acs light curves have no energy selection"):
        integral.integral_params("spi_acs", "lightcurve", CRAB, energy_range=(30, 80) * u.keV, **TIMES)


@pytest.mark.parametrize("instrument, kind, message", [
    ("ibis", "image", "unknown INTEGRAL instrument 'ibis'; choose one of isgri, jemx, spi_acs"),
    ("spi_acs", "spectrum", "spi_acs has no spectrum product on MMODA; instruments with one: isgri, jemx"),
    ("isgrii", "image", r"unknown INTEGRAL instrument 'isgrii' \(did you mean 'isgri'\?\); choose one of"),
])
def test_instrument_info_names_the_choices(instrument, kind, message):
    with pytest.raises(InvalidQueryError, match=message):
        integral.instrument_info(instrument, kind)


def test_instrument_names_in_any_case():
    product, params, meta = integral.integral_params(integral.canonical_instrument("ISGRI"), "image", CRAB,
                                                     **TIMES)
    assert product == "isgri_image" and meta["instrument"] == "isgri"
    assert integral.instrument_info("JEMX", "image") is integral.INSTRUMENTS["jemx"]
    assert integral.lightcurve_options("SPI-ACS", time_bin=None, energy_range=None, radius=None,
                                       max_pointings=None, osa_version=None, scw_list=None,
                                       catalog=None) == {"time_bin": None, "energy_range": None}


@pytest.mark.parametrize("name, message", [
    ("energy", r"energy= is not an argument of the INTEGRAL methods \(did you mean 'energy_range'\?\)"),
    ("timebin", r"did you mean 'time_bin'"),
    ("async_job", "use the method's _async form"),
    ("verbose", r"log.setLevel\('INFO'\)"),
    ("product_type", "query_type='Real' or 'Dummy'"),
])
def test_extra_parameters_that_look_like_arguments_get_a_hint(name, message):
    with pytest.raises(InvalidQueryError, match=message):
        integral.add_extra_params({}, {name: 1})


def test_extra_parameters_of_the_product_are_added():
    extra = {"time_bin_format": "sec", "E1_keV": 25.0, "src_name": "Crab", "integral_data_rights": "public"}
    assert integral.add_extra_params({"RA": 1.0}, extra) == dict(extra, RA=1.0)


def test_check_pointings_names_the_role_needed():
    assert integral.check_pointings(50, (), logged_in=False) == 50
    assert integral.check_pointings(500, {"unige-hpc-full"}, logged_in=True) == 500
    with pytest.raises(InvalidQueryError, match="positive integer, not True"):
        integral.check_pointings(True, (), logged_in=False)
    with pytest.raises(InvalidQueryError, match=r"above 50, which needs the 'unige-hpc-full' role "
                                                r"\(and you are not logged in\)$"):
        integral.check_pointings(51, (), logged_in=False)
    with pytest.raises(InvalidQueryError, match="'unige-hpc-full' role$"):
        integral.check_pointings(51, {"general"}, logged_in=True)
    with pytest.raises(InvalidQueryError, match="above 500, which needs the 'unige-hpc-extreme' role"):
        integral.check_pointings(501, {"unige-hpc-full"}, logged_in=True)


def test_bad_osa_version_and_threshold():
    with pytest.raises(InvalidQueryError, match="osa_version must look like 'OSA11.2', not '11.2'"):
        integral.integral_params("isgri", "image", CRAB, osa_version="11.2", **TIMES)
    with pytest.raises(InvalidQueryError, match="detection_threshold must be a positive number"):
        integral.integral_params("isgri", "image", CRAB, detection_threshold=0, **TIMES)


def test_extra_parameters_may_not_repeat_the_methods_own():
    assert integral.add_extra_params({"RA": 1.0}, {"src_name": "x"}) == {"RA": 1.0, "src_name": "x"}
    with pytest.raises(InvalidQueryError, match="give RA through the method's own arguments"):
        integral.add_extra_params({"RA": 1.0}, {"RA": 2.0})


def test_lightcurve_options():
    options = dict(time_bin=None, energy_range=None, radius=8 * u.deg, max_pointings=None,
                   osa_version=None, scw_list=None, catalog=None)
    assert integral.lightcurve_options("isgri", **options)["radius"] == 8 * u.deg
    with pytest.raises(InvalidQueryError, match="SPI-ACS light curves take no radius"):
        integral.lightcurve_options("spi_acs", **options)
    assert integral.lightcurve_options("spi_acs", **dict(options, radius=None)) == {
        "time_bin": None, "energy_range": None}


def test_catalog_and_images_of_an_image_job():
    catalog = Table({"src_names": ["Crab"], "ra": [83.63], "dec": [22.01]})
    mosaic = fits.HDUList([fits.PrimaryHDU()])
    products = Products({"mosaic": ("fits", mosaic), "catalog": ("catalog", catalog)})
    shaped = integral.catalog_result(products, meta={"instrument": "isgri"})
    assert shaped["ra"].unit == u.deg and shaped.meta["instrument"] == "isgri"
    assert catalog["ra"].unit is None  # the decoded table is left alone
    assert integral.images_result(products) == [mosaic]
    with pytest.warns(NoResultsWarning, match="no source catalog for this jemx image"):
        empty = integral.catalog_result(Products({}), meta={"instrument": "jemx"})
    assert len(empty) == 0 and empty.meta == {"instrument": "jemx"}
