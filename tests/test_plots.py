"""Quick-look plots, on products generated here with astropy (no server)."""
import builtins
import importlib
import sys

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import Table
from astropy.wcs import WCS

from astroquery_mmoda.integral import Spectrum, lightcurve_to_timeseries

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("agg")
import matplotlib.pyplot as plt  # noqa: E402

from astroquery_mmoda import plots  # noqa: E402
from astroquery_mmoda.plots import plot_image, plot_lightcurve, plot_spectrum  # noqa: E402

CENTRE = (256.0, -38.0)
SOURCES = [("4U 1700-377", 255.9865, -37.8441, 45.0),
           ("OAO 1657-415", 255.2038, -41.6560, 21.5),
           ("GX 349+2", 256.4354, -36.4233, 12.3),
           ("NEW_1", 257.5, -39.0, 6.1)]


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# -- generated products ---------------------------------------------------------------------

def mosaic_wcs(size=101):
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = CENTRE
    wcs.wcs.crpix = [(size + 1) / 2, (size + 1) / 2]
    wcs.wcs.cdelt = [-0.1, 0.1]
    wcs.wcs.radesys = "FK5"
    wcs.wcs.equinox = 2000.0
    return wcs


def make_mosaic(size=101):
    """An ISGRI-like mosaic: PRIMARY, GROUPING, four ISGR-MOSA-IMA maps with a TAN WCS."""
    wcs = mosaic_wcs(size)
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:size, :size]
    significance = rng.normal(0, 1, (size, size))
    for _, ra, dec, sigma in SOURCES:
        x, y = wcs.world_to_pixel(SkyCoord(ra, dec, unit="deg", frame="fk5"))
        significance += sigma * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.5 ** 2))
    maps = {"INTENSITY": significance * 0.02, "VARIANCE": np.full((size, size), 4e-4),
            "SIGNIFICANCE": significance, "EXPOSURE": np.full((size, size), 3600.0)}
    kinds = list(maps)
    grouping = fits.BinTableHDU.from_columns(
        [fits.Column("IMATYPE", "32A", array=kinds),
         fits.Column("E_MIN", "1E", unit="keV", array=[30.0] * 4),
         fits.Column("E_MAX", "1E", unit="keV", array=[80.0] * 4)], name="GROUPING")
    hdus = [fits.PrimaryHDU(), grouping]
    for kind, data in maps.items():
        header = wcs.to_header()
        header["IMATYPE"] = kind
        hdus.append(fits.ImageHDU(data.astype(">f4"), header=header, name="ISGR-MOSA-IMA"))
    return fits.HDUList(hdus)


def make_catalog():
    catalog = Table({"src_names": [s[0] for s in SOURCES] + ["Crab"],
                     "ra": [s[1] for s in SOURCES] + [83.633],
                     "dec": [s[2] for s in SOURCES] + [22.0145],
                     "significance": [s[3] for s in SOURCES] + [30.0]})
    catalog["ra"].unit = catalog["dec"].unit = u.deg
    catalog.meta.update(FRAME="fk5", LON_NAME="ra", LAT_NAME="dec", COORD_UNIT="deg")
    return catalog


def make_lightcurve_hdul(n=20, time_bin=1000.0, start_ijd=6300.25, empty=(3, 11)):
    """An ISGRI-like light curve: TIME in IJD (days since MJD 51544), TIMEDEL in days."""
    rng = np.random.default_rng(2)
    timedel = time_bin / 86400.0
    fracexp = np.ones(n)
    fracexp[list(empty)] = 0.0
    rate = 5 + np.sin(np.arange(n) / 3) + rng.normal(0, 0.2, n)
    columns = [fits.Column("TIME", "1D", unit="d", array=start_ijd + timedel * np.arange(n)),
               fits.Column("TIMEDEL", "1D", unit="d", array=np.full(n, timedel)),
               fits.Column("RATE", "1E", unit="count/s", array=rate),
               fits.Column("ERROR", "1E", unit="count/s", array=np.full(n, 0.3)),
               fits.Column("FRACEXP", "1E", array=fracexp),
               fits.Column("XAX_E", "1E", unit="d", array=np.full(n, timedel / 2))]
    table = fits.BinTableHDU.from_columns(columns, name="ISGR-SRC.-LCR")
    table.header.update(NAME="4U 1700-377", MJDREF=51544.0, TIMESYS="TT", TIMEUNIT="d",
                        TIMEDEL=timedel, HDUCLAS1="LIGHTCURVE", INSTRUME="IBIS")
    return fits.HDUList([fits.PrimaryHDU(), table])


def make_lightcurve(**options):
    meta = {"instrument": "isgri", "energy_range": [30, 80] * u.keV}
    return lightcurve_to_timeseries(make_lightcurve_hdul(**options), meta=meta)


def make_spectrum(n=62):
    """An ISGRI-like spectrum with a response whose EBOUNDS is named as OSA names it."""
    edges = np.geomspace(15.0, 1000.0, n + 1)
    centre = np.sqrt(edges[:-1] * edges[1:])
    rate = 3.0 * (centre / 20.0) ** -2.1 * (edges[1:] - edges[:-1])
    rate[-3:] = [-1e-4, 0.0, -2e-4]  # background-subtracted high channels
    quality = np.zeros(n, dtype=np.int16)
    quality[5] = 1
    spectrum = fits.BinTableHDU.from_columns(
        [fits.Column("CHANNEL", "1I", array=np.arange(n)),
         fits.Column("RATE", "1E", unit="count/s", array=rate),
         fits.Column("SYS_ERR", "1E", array=np.zeros(n)),
         fits.Column("STAT_ERR", "1E", unit="count/s", array=np.abs(rate) * 0.1 + 1e-4),
         fits.Column("QUALITY", "1I", array=quality)], name="ISGR-EVTS-SPE")
    spectrum.header.update(NAME="4U 1700-377", HDUCLAS1="SPECTRUM", EXPOSURE=1190.3,
                           INSTRUME="IBIS", DETCHANS=n)
    matrix = fits.BinTableHDU.from_columns(
        [fits.Column("ENERG_LO", "1E", unit="keV", array=edges[:-1]),
         fits.Column("ENERG_HI", "1E", unit="keV", array=edges[1:])], name="ISGR-RMF.-RSP")
    ebounds = fits.BinTableHDU.from_columns(
        [fits.Column("CHANNEL", "1I", array=np.arange(n)),
         fits.Column("E_MIN", "1E", unit="keV", array=edges[:-1]),
         fits.Column("E_MAX", "1E", unit="keV", array=edges[1:])], name="ISGR-EBDS-MOD")
    ebounds.header.update(HDUCLAS1="RESPONSE", HDUCLAS2="EBOUNDS")
    arf = fits.HDUList([fits.PrimaryHDU()])
    return Spectrum("4U 1700-377", fits.HDUList([fits.PrimaryHDU(), spectrum]), arf,
                    fits.HDUList([fits.PrimaryHDU(), matrix, ebounds])), edges, rate, quality


def errorbar_parts(ax, index=0):
    """The data line and the x and y error-bar collections of an errorbar call."""
    container = ax.containers[index]
    line, _, bars = container.lines
    return line, bars


# -- light curves -----------------------------------------------------------------------------

def test_lightcurve_points_errors_labels_title(tmp_path):
    series = make_lightcurve()
    ax = plot_lightcurve(series)
    line, (xbars, ybars) = errorbar_parts(ax)
    assert len(line.get_xdata()) == 18  # two empty bins dropped
    assert len(ybars.get_segments()) == len(xbars.get_segments()) == 18
    x = np.asarray(line.get_xdata())
    assert x[0] == pytest.approx(0.0)
    assert x[1] == pytest.approx(1000.0)
    # the half bin width as horizontal error
    segment = xbars.get_segments()[0]
    assert segment[1][0] - segment[0][0] == pytest.approx(1000.0)
    # the vertical error bar spans rate ± ERROR
    low, high = ybars.get_segments()[0][:, 1]
    assert high - low == pytest.approx(0.6, rel=1e-5)
    start = series[~series["empty"]].time[0]
    assert ax.get_xlabel() == f"Time since {start.utc.isot} UTC [s]"
    assert ax.get_ylabel() == "Rate [ct / s]"
    assert ax.get_title() == "4U 1700-377 — ISGRI 30–80 keV"
    ax.figure.savefig(tmp_path / "lightcurve.png")
    assert (tmp_path / "lightcurve.png").stat().st_size > 0


def test_lightcurve_title_takes_the_band_of_the_data():
    hdul = make_lightcurve_hdul()
    hdul[1].header.update(E_MIN=20.0, E_MAX=40.0)
    series = lightcurve_to_timeseries(hdul, meta={"instrument": "isgri", "energy_range": [30, 80] * u.keV})
    assert plot_lightcurve(series).get_title() == "4U 1700-377 — ISGRI 20–40 keV"
    assert series.meta["energy_range"].to_value(u.keV).tolist() == [20.0, 40.0]
    assert series.time.scale == "utc" and str(series.time[0]).startswith("20")


def test_lightcurve_ijd_is_placed_on_the_time_axis():
    series = make_lightcurve()
    # IJD 6300.25 is MJD 57844.25
    assert series.time[0].mjd == pytest.approx(57844.25)
    ax = plot_lightcurve(series)
    # TT 06:00 is UTC 05:58:50.816 (TT - UTC = 69.184 s in 2017)
    assert ax.get_xlabel() == "Time since 2017-04-01T05:58:50.816 UTC [s]"


def test_lightcurve_keep_empty_bins_and_title_override():
    ax = plot_lightcurve(make_lightcurve(), drop_empty=False, title="my source")
    line, _ = errorbar_parts(ax)
    assert len(line.get_xdata()) == 20
    assert ax.get_title() == "my source"


def test_long_lightcurve_in_mjd_and_meta_keys():
    hdul = make_lightcurve_hdul(n=12, time_bin=86400.0, empty=())
    series = lightcurve_to_timeseries(hdul, meta={"instrument": "jemx", "E1_keV": 3, "E2_keV": 20})
    ax = plot_lightcurve(series)
    line, (xbars, _) = errorbar_parts(ax)
    np.testing.assert_allclose(line.get_xdata(), series.time.mjd)
    segment = xbars.get_segments()[0]
    assert segment[1][0] - segment[0][0] == pytest.approx(1.0)
    assert ax.get_xlabel() == "Time [MJD, UTC]"
    assert ax.get_title() == "4U 1700-377 — JEM-X 3–20 keV"
    assert not ax.xaxis.get_major_formatter().get_useOffset()


def test_lightcurve_from_hdulist_and_ax_reuse():
    figure, ax = plt.subplots()
    returned = plot_lightcurve(make_lightcurve_hdul(), ax=ax)
    assert returned is ax
    plot_lightcurve(make_lightcurve(), ax=ax)
    assert len(ax.containers) == 2
    assert len(plt.get_fignums()) == 1
    # no meta given: the source name alone
    assert ax.get_title() == "4U 1700-377 — ISGRI 30–80 keV"


# -- images -------------------------------------------------------------------------------------

def test_image_marks_and_labels_the_catalog_sources(tmp_path):
    hdul, catalog = make_mosaic(), make_catalog()
    ax = plot_image(hdul, catalog=catalog)
    # the Crab is far outside the map: not marked
    inside = [s[0] for s in SOURCES]
    assert [text.get_text() for text in ax.texts] == inside
    markers = ax.collections[0].get_offsets()
    assert len(markers) == len(inside)
    expected = np.column_stack(mosaic_wcs().world_to_pixel(
        SkyCoord([s[1] for s in SOURCES], [s[2] for s in SOURCES], unit="deg", frame="fk5")))
    np.testing.assert_allclose(markers, expected, atol=1e-6)
    for text, (x, y) in zip(ax.texts, expected):
        assert text.xy == pytest.approx((x, y))
    # the map shown is the SIGNIFICANCE one, on the WCS projection
    image = ax.get_images()[0]
    np.testing.assert_array_equal(image.get_array(), hdul[4].data)
    assert ax.wcs.wcs.ctype[0] == "RA---TAN"
    assert ax.get_title() == "ISGRI significance 30–80 keV"
    ax.figure.savefig(tmp_path / "image.png")
    assert (tmp_path / "image.png").stat().st_size > 0


HOSTILE_NAME = r"$\undefinedmacro{x}$ 1E 1740$.7"


def test_server_text_is_never_mathtext(tmp_path):
    """Source names, units and header values from the server are drawn as they are."""
    hdul, catalog = make_mosaic(), make_catalog()
    catalog["src_names"] = catalog["src_names"].astype("U40")
    catalog["src_names"][0] = HOSTILE_NAME
    hdul[4].header["BUNIT"] = "$\\frac{"
    ax = plot_image(hdul, catalog=catalog)
    assert ax.texts[0].get_text() == HOSTILE_NAME.replace("$", r"\$")
    ax.figure.savefig(tmp_path / "image.png")  # raises ValueError when mathtext is parsed
    series = make_lightcurve()
    series.meta["src_name"] = HOSTILE_NAME
    ax = plot_lightcurve(series)
    ax.legend()
    ax.figure.savefig(tmp_path / "lc.png")
    spectrum, *_ = make_spectrum()
    spectrum = Spectrum(HOSTILE_NAME, spectrum.spectrum, spectrum.arf, spectrum.rmf)
    ax = plot_spectrum(spectrum)
    ax.figure.savefig(tmp_path / "spectrum.png")
    assert HOSTILE_NAME.replace("$", r"\$") in ax.get_title()
    # a title the user gives keeps mathtext
    assert plot_spectrum(spectrum, title=r"$\gamma$ rays").get_title() == r"$\gamma$ rays"


def test_close_sources_get_labels_apart_and_the_significance_scale_reaches_the_brightest():
    hdul, catalog = make_mosaic(), make_catalog()
    ra, dec = float(catalog["ra"][0]), float(catalog["dec"][0])
    crowded = Table({"src_names": ["A", "B", "C"], "ra": [ra, ra + 0.05, ra - 0.05] * u.deg,
                     "dec": [dec, dec, dec + 0.05] * u.deg, "significance": [21.0, 9.0, 12.0]})
    crowded.meta.update(catalog.meta)
    ax = plot_image(hdul, catalog=crowded)
    offsets = [text.xyann for text in ax.texts]
    assert len(set(offsets)) == 3  # no two labels in the same place
    image = ax.get_images()[0]
    assert image.norm.vmax == pytest.approx(np.nanmax(hdul[4].data))


def test_image_source_at_reference_pixel():
    hdul = make_mosaic()
    catalog = Table({"src_names": ["centre"], "ra": [CENTRE[0]], "dec": [CENTRE[1]],
                     "significance": [10.0]}, meta={"FRAME": "fk5"})
    ax = plot_image(hdul, catalog=catalog)
    # FITS pixel 51 (1-based) is index 50; the marker's display position is that pixel's
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[50.0, 50.0]], atol=1e-9)
    shown = ax.collections[0].get_offset_transform().transform([[50.0, 50.0]])
    np.testing.assert_allclose(shown, ax.transData.transform([[50.0, 50.0]]))
    world = ax.wcs.pixel_to_world(50.0, 50.0)
    assert world.ra.deg == pytest.approx(CENTRE[0]) and world.dec.deg == pytest.approx(CENTRE[1])


def test_image_min_significance_no_labels_extension_by_name_and_index():
    hdul, catalog = make_mosaic(), make_catalog()
    ax = plot_image(hdul, catalog=catalog, min_significance=20, label_sources=False,
                    extension="EXPOSURE")
    assert len(ax.texts) == 0
    assert len(ax.collections[0].get_offsets()) == 2
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), hdul[5].data)
    ax = plot_image(hdul, catalog=catalog, min_significance=20, extension=2)
    assert [text.get_text() for text in ax.texts] == ["4U 1700-377", "OAO 1657-415"]
    assert ax.get_title() == "ISGRI intensity 30–80 keV"
    with pytest.raises(ValueError, match="SIGNIFICANCE, EXPOSURE|no image with IMATYPE 'FLUX'"):
        plot_image(hdul, extension="FLUX")


def test_jemx_significance_map_and_plain_axes_reuse():
    hdul = make_mosaic()
    for hdu in hdul[2:]:
        hdu.name = "JMX2-MOSA-IMA"
        hdu.header["IMATYPE"] = {"INTENSITY": "RECONSTRUCTED",
                                 "SIGNIFICANCE": "RECON_SIG"}.get(hdu.header["IMATYPE"],
                                                                  hdu.header["IMATYPE"])
    figure, ax = plt.subplots()
    returned = plot_image(hdul, catalog=make_catalog(), ax=ax, colorbar=False)
    assert returned is ax
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), hdul[4].data)
    assert ax.get_title().startswith("JEM-X2 recon_sig")
    # plain axes: pixel coordinates, the markers still at the sources' pixels
    assert ax.get_xlabel() == "x [pixel]"
    expected = np.column_stack(mosaic_wcs().world_to_pixel(
        SkyCoord([s[1] for s in SOURCES], [s[2] for s in SOURCES], unit="deg", frame="fk5")))
    np.testing.assert_allclose(ax.collections[0].get_offsets(), expected, atol=1e-6)
    assert [text.get_text() for text in ax.texts] == [s[0] for s in SOURCES]
    assert len(figure.axes) == 1  # no colour bar


def test_plain_fits_image():
    header = mosaic_wcs(21).to_header()
    image = fits.ImageHDU(np.arange(21 * 21, dtype=float).reshape(21, 21), header=header)
    catalog = Table({"src_names": ["centre"], "ra": [CENTRE[0]], "dec": [CENTRE[1]]})
    ax = plot_image(image, catalog=catalog)
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), image.data)
    # an ICRS catalog on an FK5 map: a few milliarcseconds apart
    np.testing.assert_allclose(ax.collections[0].get_offsets(), [[10.0, 10.0]], atol=1e-3)
    assert [text.get_text() for text in ax.texts] == ["centre"]
    with pytest.raises(ValueError, match="no image with IMATYPE 'EXPOSURE'"):
        plot_image(fits.HDUList([fits.PrimaryHDU(), image]), extension="EXPOSURE")


# -- spectra --------------------------------------------------------------------------------

def test_spectrum_log_axes_points_errors(tmp_path):
    spectrum, edges, rate, quality = make_spectrum()
    ax = plot_spectrum(spectrum)
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    line, (xbars, ybars) = errorbar_parts(ax)
    keep = (rate > 0) & (quality == 0)
    assert len(line.get_xdata()) == keep.sum() == 58
    assert len(ybars.get_segments()) == 58
    centre = (edges[:-1] + edges[1:]) / 2
    np.testing.assert_allclose(line.get_xdata(), centre[keep], rtol=1e-6)
    np.testing.assert_allclose(line.get_ydata(), rate[keep], rtol=1e-6)
    # the horizontal error bar spans the channel's E_MIN..E_MAX
    np.testing.assert_allclose(xbars.get_segments()[0][:, 0], edges[:2], rtol=1e-6)
    assert ax.get_xlabel() == "Energy [keV]"
    assert ax.get_ylabel() == "Count rate per channel [ct / s]"
    assert ax.get_title() == "4U 1700-377 — ISGRI"
    ax.figure.savefig(tmp_path / "spectrum.png")
    assert (tmp_path / "spectrum.png").stat().st_size > 0


def test_spectrum_from_pair_per_kev_and_ax_reuse():
    spectrum, edges, rate, quality = make_spectrum()
    rmf = spectrum.rmf
    rmf[2].name = "EBOUNDS"
    del rmf[2].header["HDUCLAS2"]
    figure, ax = plt.subplots()
    returned = plot_spectrum((spectrum.spectrum, rmf), ax=ax, per_kev=True)
    assert returned is ax
    line, _ = errorbar_parts(ax)
    keep = (rate > 0) & (quality == 0)
    np.testing.assert_allclose(line.get_ydata(), (rate / np.diff(edges))[keep], rtol=1e-5)
    assert ax.get_ylabel() == "Count rate per keV [ct / (keV s)]"
    assert ax.get_title() == "4U 1700-377 — ISGRI"


def test_spectrum_from_counts_and_bad_inputs():
    spectrum, edges, _, _ = make_spectrum(n=8)
    counts = np.array([100, 80, 60, 40, 20, 10, 5, 0])
    table = fits.BinTableHDU.from_columns(
        [fits.Column("CHANNEL", "1I", array=np.arange(8)),
         fits.Column("COUNTS", "1J", array=counts)])
    table.header["EXPOSURE"] = 10.0
    ax = plot_spectrum((fits.HDUList([fits.PrimaryHDU(), table]), spectrum.rmf))
    line, (_, ybars) = errorbar_parts(ax)
    np.testing.assert_allclose(line.get_ydata(), counts[:7] / 10.0)
    low, high = ybars.get_segments()[0][:, 1]
    assert high - low == pytest.approx(2 * np.sqrt(100) / 10.0)
    with pytest.raises(ValueError, match="EBOUNDS"):
        plot_spectrum((spectrum.spectrum, spectrum.arf))
    with pytest.raises(TypeError, match="Spectrum"):
        plot_spectrum(spectrum.spectrum)


# -- matplotlib is optional ------------------------------------------------------------------

def test_missing_matplotlib_names_the_extra(monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    module = importlib.reload(plots)  # the module itself imports without matplotlib
    with pytest.raises(ImportError, match=r"pip install \"astroquery_mmoda\[plot\]\""):
        module.plot_lightcurve(make_lightcurve())
    with pytest.raises(ImportError, match="astroquery_mmoda"):
        module.plot_image(make_mosaic())
