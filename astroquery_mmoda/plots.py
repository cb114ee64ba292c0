"""Quick-look plots of MMODA products: light curves, sky images, spectra.

Matplotlib is an optional dependency: install it with
``pip install "astroquery_mmoda[plot]"``.  Every function draws into the
given ``ax`` (or a new figure) and returns the axes.
"""
import warnings

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.wcs import FITSFixedWarning

__all__ = ["plot_lightcurve", "plot_image", "plot_spectrum"]

# Light curves spanning less than this are drawn in seconds from their start;
# longer ones in MJD.
_SECONDS_AXIS_LIMIT = 1 * u.d
_INSTRUMENT_PREFIXES = {"ISGR": "ISGRI", "JMX1": "JEM-X1", "JMX2": "JEM-X2", "JMX": "JEM-X",
                        "SPI": "SPI"}
_INSTRUMENT_NAMES = {"isgri": "ISGRI", "jemx": "JEM-X", "jemx1": "JEM-X1", "jemx2": "JEM-X2",
                     "spi_acs": "SPI-ACS"}
_DEFAULT_MAP = "SIGNIFICANCE"
# JEM-X mosaics name the maps differently from ISGRI's.
_IMATYPE_ALIASES = {"SIGNIFICANCE": ("RECON_SIG",), "INTENSITY": ("RECONSTRUCTED",),
                    "RECON_SIG": ("SIGNIFICANCE",), "RECONSTRUCTED": ("INTENSITY",)}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError('plotting needs matplotlib: pip install "astroquery_mmoda[plot]"') from None
    return plt


def _new_axes(ax, **subplot):
    if ax is not None:
        return ax
    figure = _pyplot().figure()
    return figure.add_subplot(**subplot)


def _plain(text):
    """Server text as matplotlib shows it literally: a ``$`` would start mathtext, which can fail.

    Titles given by the user keep mathtext; only what comes from the data goes through here.
    """
    return str(text).replace("$", r"\$")


def _unit_text(unit):
    if unit is None or unit == u.dimensionless_unscaled:
        return ""
    return _plain(f" [{u.Unit(unit).to_string()}]")


def _instrument_name(value):
    text = str(value or "").strip()
    if not text:
        return ""
    if text.lower() in _INSTRUMENT_NAMES:
        return _INSTRUMENT_NAMES[text.lower()]
    for prefix, name in _INSTRUMENT_PREFIXES.items():
        if text.upper().startswith(prefix):
            return name
    return text


def _header_instrument(header, extname):
    """The instrument of an OSA product: INSTRUME says IBIS, DETNAM or the EXTNAME says ISGRI."""
    for value in (header.get("DETNAM"), extname):
        name = _instrument_name(value)
        if name in _INSTRUMENT_PREFIXES.values():
            return name
    return _instrument_name(header.get("INSTRUME") or extname)


def _number(value):
    if isinstance(value, u.Quantity):
        return float(value.to_value(u.keV, equivalencies=u.spectral()))
    return float(value)


def _energy_band(meta):
    """``"30–80 keV"`` from the energy keys a product's meta-data may have, else ``""``."""
    pairs = [("E1_keV", "E2_keV"), ("e_min", "e_max"), ("E_MIN", "E_MAX"), ("emin", "emax")]
    low = high = None
    band = meta.get("energy_range", meta.get("energy_band"))
    if band is not None and np.size(band) == 2:
        low, high = band[0], band[1]
    else:
        for one, two in pairs:
            if meta.get(one) is not None and meta.get(two) is not None:
                low, high = meta[one], meta[two]
                break
    try:
        low, high = _number(low), _number(high)
    except (TypeError, ValueError, u.UnitsError):
        return ""
    if not (np.isfinite(low) and np.isfinite(high)):
        return ""
    return f"{low:g}–{high:g} keV"


def _title(*parts):
    source, rest = parts[0], " ".join(part for part in parts[1:] if part)
    if source and rest.startswith(source):  # e.g. SPI-ACS, whose light curve is named after it
        source = ""
    return " — ".join(part for part in (source, rest) if part)


# -- light curves ---------------------------------------------------------------------------

def plot_lightcurve(series, *, ax=None, drop_empty=True, title=None):
    """Plot a light curve: rate against time with error bars.

    Light curves shorter than a day are drawn in seconds since their first
    bin (the axis label gives that time in UTC), longer ones in MJD.  The
    horizontal error bars are the half bin widths.

    Parameters
    ----------
    series : `~astropy.timeseries.TimeSeries` or `~astropy.io.fits.HDUList`
        A light curve as made by ``lightcurve_to_timeseries`` (columns
        ``time``, ``rate``, optionally ``rate_err``, ``time_bin``, ``empty``),
        or the FITS light curve itself.
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw (default: a new figure).
    drop_empty : bool
        Leave out bins without exposure or without a valid rate.
    title : str, optional
        Default: the source name, instrument and energy band from
        ``series.meta``.

    Returns
    -------
    `~matplotlib.axes.Axes`

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astroquery_mmoda import Mmoda
    >>> curves = Mmoda.get_lightcurve(SkyCoord(255.98654, -37.84414, unit="deg"), instrument="spi_acs",
    ...                               start_time="2003-03-15T23:27:40", end_time="2003-03-15T23:32:40",
    ...                               time_bin=0.5 * u.s)  # doctest: +SKIP
    >>> ax = plot_lightcurve(curves["SPI-ACS"])  # doctest: +SKIP
    >>> ax.figure.savefig("spi_acs.png")  # doctest: +SKIP
    """
    if isinstance(series, fits.HDUList):
        from .integral import lightcurve_to_timeseries
        series = lightcurve_to_timeseries(series)
    meta = dict(series.meta)
    if drop_empty and "empty" in series.colnames:
        series = series[~np.asarray(series["empty"], dtype=bool)]
    ax = _new_axes(ax)

    times = series.time
    rate = u.Quantity(series["rate"])
    error = u.Quantity(series["rate_err"]).to_value(rate.unit) if "rate_err" in series.colnames else None
    widths = u.Quantity(series["time_bin"]).to(u.s) if "time_bin" in series.colnames else None
    if widths is not None and not np.isfinite(widths.value).any():
        widths = None

    if len(times) and (times.max() - times.min()) < _SECONDS_AXIS_LIMIT:
        start = times.min()
        x = (times - start).to_value(u.s)
        x_error = None if widths is None else widths.to_value(u.s) / 2
        ax.set_xlabel(f"Time since {start.utc.isot} UTC [s]")
    else:
        x = times.mjd
        x_error = None if widths is None else widths.to_value(u.d) / 2
        ax.set_xlabel(f"Time [MJD, {times.scale.upper()}]")
        ax.ticklabel_format(axis="x", useOffset=False, style="plain")
    dense = len(x) > 100
    ax.errorbar(x, rate.value, yerr=error, xerr=x_error, fmt="." if dense else "o",
                markersize=2 if dense else 3, linewidth=0.6 if dense else 1, capsize=0,
                label=_plain(meta["src_name"]) if meta.get("src_name") else None)
    ax.set_ylabel(f"Rate{_unit_text(rate.unit)}")
    if title is None:
        title = _plain(_title(str(meta.get("src_name") or "").strip(),
                              _instrument_name(meta.get("instrument")), _energy_band(meta)))
    if title:
        ax.set_title(title)
    return ax


# -- images ---------------------------------------------------------------------------------

def _image_hdu(hdul, extension):
    if isinstance(extension, (int, np.integer)):
        hdu = hdul[int(extension)]
        if hdu.data is None or np.ndim(hdu.data) != 2:
            raise ValueError(f"HDU {extension} holds no 2-D image")
        return hdu
    wanted = str(extension).strip().upper()
    images = [hdu for hdu in hdul if isinstance(hdu, (fits.PrimaryHDU, fits.ImageHDU))
              and hdu.data is not None and np.ndim(hdu.data) == 2]
    for names in ((wanted,), _IMATYPE_ALIASES.get(wanted, ())):
        for hdu in images:
            kind = str(hdu.header.get("IMATYPE", "")).strip().upper()
            if kind in names or hdu.name.upper() in names:
                return hdu
    if len(images) == 1 and wanted == _DEFAULT_MAP:
        return images[0]  # a plain FITS image, not a mosaic
    kinds = [str(hdu.header.get("IMATYPE", hdu.name)).strip() for hdu in images]
    raise ValueError(f"no image with IMATYPE {wanted!r}; the images are: "
                     f"{', '.join(kinds) or 'none'} (or give an HDU index)")


def _image_energy(hdul, hdu):
    """The energy band of a mosaic map, from its header or the GROUPING table."""
    header = hdu.header
    if "E_MIN" in header and "E_MAX" in header:
        return _energy_band({"e_min": header["E_MIN"], "e_max": header["E_MAX"]})
    kind = str(header.get("IMATYPE", "")).strip()
    for table in hdul:
        if isinstance(table, fits.BinTableHDU) and {"IMATYPE", "E_MIN", "E_MAX"} <= \
                set(table.columns.names):
            for row in table.data:
                if str(row["IMATYPE"]).strip() == kind:
                    return _energy_band({"e_min": row["E_MIN"], "e_max": row["E_MAX"]})
    return ""


def _catalog_frame(catalog):
    frame = str(catalog.meta.get("FRAME", catalog.meta.get("frame", "icrs"))).strip().lower()
    return frame or "icrs"


def plot_image(hdul, *, catalog=None, ax=None, extension=_DEFAULT_MAP, label_sources=True,
               min_significance=None, title=None, colorbar=True):
    """Plot a sky map of a mosaic with its sources marked.

    Parameters
    ----------
    hdul : `~astropy.io.fits.HDUList` or `~astropy.io.fits.ImageHDU`
        A mosaic (``ISGR-MOSA-IMA``, ``JMX*-MOSA-IMA`` maps) or any FITS
        image with a celestial WCS.
    catalog : `~astropy.table.Table`, optional
        Sources to mark, with columns ``src_names``, ``ra``, ``dec`` (deg)
        and optionally ``significance``.
    ax : `~astropy.visualization.wcsaxes.WCSAxes`, optional
        Where to draw (default: a new figure with the image's WCS
        projection).  Plain axes work too: they show pixel coordinates.
    extension : str or int
        The map's ``IMATYPE`` (``'SIGNIFICANCE'``, ``'INTENSITY'``,
        ``'VARIANCE'``, ``'EXPOSURE'``; JEM-X's ``RECON_SIG`` and
        ``RECONSTRUCTED`` are found under the ISGRI names too), or an HDU
        index.  A file with a single image shows that image by default.
    label_sources : bool
        Write each source's name next to its marker.
    min_significance : float, optional
        Mark only the sources at least this significant.
    title : str, optional
        Default: instrument, map type and energy band.
    colorbar : bool
        Add a colour bar.

    Returns
    -------
    `~matplotlib.axes.Axes`

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astroquery_mmoda import Mmoda
    >>> field, when = SkyCoord(258.5, -38.0, unit="deg"), dict(start_time="2003-03-15", end_time="2003-03-16")
    >>> catalog = Mmoda.query_region(field, 8 * u.deg, **when, max_pointings=10)  # doctest: +SKIP
    >>> (mosaic,) = Mmoda.get_images(field, 8 * u.deg, **when, max_pointings=10)  # doctest: +SKIP
    >>> ax = plot_image(mosaic, catalog=catalog, min_significance=8)  # doctest: +SKIP
    """
    plt = _pyplot()
    from astropy.coordinates import SkyCoord
    from astropy.visualization import AsinhStretch, AsymmetricPercentileInterval, ImageNormalize
    from astropy.wcs import WCS

    if isinstance(hdul, (fits.PrimaryHDU, fits.ImageHDU)):
        hdul = fits.HDUList([hdul])
    hdu = _image_hdu(hdul, extension)
    data = np.asarray(hdu.data, dtype=float)
    with warnings.catch_warnings():
        # OSA mosaics carry DATE-OBS and MJDREF, which WCS "fixes" with a warning.
        warnings.simplefilter("ignore", FITSFixedWarning)
        wcs = WCS(hdu.header).celestial
    if ax is None:
        ax = plt.figure().add_subplot(projection=wcs)
    finite = data[np.isfinite(data)]
    kind = str(hdu.header.get("IMATYPE", hdu.name or "")).strip()
    norm = None
    if finite.size and finite.min() < finite.max():
        # A significance map's sources are its few brightest pixels: the scale reaches its maximum,
        # so that a 21-sigma source does not look like a 7-sigma one.
        upper = 100.0 if kind.upper() == "SIGNIFICANCE" else 99.9
        norm = ImageNormalize(finite, interval=AsymmetricPercentileInterval(0.5, upper),
                              stretch=AsinhStretch(0.1))
    image = ax.imshow(data, origin="lower", cmap="inferno", norm=norm, interpolation="nearest")
    if colorbar:
        unit = str(hdu.header.get("BUNIT", "")).strip()
        ax.figure.colorbar(image, ax=ax, label=_plain(kind.lower() + (f" [{unit}]" if unit else "")))
    if hasattr(ax, "coords"):
        ax.coords[0].set_axislabel("Right ascension")
        ax.coords[1].set_axislabel("Declination")
    else:
        ax.set_xlabel("x [pixel]")
        ax.set_ylabel("y [pixel]")

    if catalog is not None and len(catalog):
        sources = catalog
        if min_significance is not None and "significance" in catalog.colnames:
            keep = np.asarray(catalog["significance"], dtype=float) >= float(min_significance)
            sources = catalog[keep]
        _mark_sources(ax, sources, wcs, data.shape, SkyCoord, label_sources)

    if title is None:
        instrument = _header_instrument(hdu.header, hdu.name)
        parts = (instrument, kind.lower(), _image_energy(hdul, hdu))
        title = _plain(" ".join(part for part in parts if part))
    if title:
        ax.set_title(title)
    ax.set_xlim(-0.5, data.shape[1] - 0.5)
    ax.set_ylim(-0.5, data.shape[0] - 0.5)
    return ax


def _mark_sources(ax, sources, wcs, shape, SkyCoord, label_sources):
    if not len(sources):
        return
    ra = u.Quantity(sources["ra"], u.deg) if sources["ra"].unit is None else u.Quantity(sources["ra"])
    dec = u.Quantity(sources["dec"], u.deg) if sources["dec"].unit is None \
        else u.Quantity(sources["dec"])
    coords = SkyCoord(ra, dec, frame=_catalog_frame(sources))
    x, y = wcs.world_to_pixel(coords)
    x, y = np.atleast_1d(x), np.atleast_1d(y)
    inside = np.isfinite(x) & np.isfinite(y) & (x > -0.5) & (x < shape[1] - 0.5) & \
        (y > -0.5) & (y < shape[0] - 0.5)
    ax.scatter(x[inside], y[inside], s=120, facecolors="none", edgecolors="cyan", linewidths=1.2)
    if not label_sources:
        return
    names = [str(name).strip() for name in sources["src_names"]]
    from matplotlib import patheffects

    outline = [patheffects.withStroke(linewidth=2.5, foreground="black")]
    near = 0.08 * max(shape)  # labels of sources closer than this would overlap
    placed = []
    for name, px, py in zip(np.array(names)[inside], x[inside], y[inside]):
        crowd = sum(np.hypot(px - qx, py - qy) < near for qx, qy in placed)
        # Neighbours' labels go alternately below and above, further each time.
        rise = 8 if crowd == 0 else (-14 - 12 * (crowd // 2) if crowd % 2 else 8 + 12 * (crowd // 2))
        ax.annotate(_plain(name), (px, py), xytext=(8, rise), textcoords="offset points", color="cyan",
                    fontsize=9, path_effects=outline)
        placed.append((px, py))


# -- spectra ----------------------------------------------------------------------------------

def _plain_log_ticks(axis):
    # Energy ranges span one to three decades: label 1-2-5 steps as plain numbers
    # (matplotlib's default labels the minor ticks too, and they overlap).
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def _spectrum_table(hdul):
    tables = [hdu for hdu in hdul if isinstance(hdu, fits.BinTableHDU)
              and "CHANNEL" in hdu.columns.names
              and ({"RATE", "COUNTS"} & set(hdu.columns.names))]
    if not tables:
        raise ValueError("the spectrum has no table with CHANNEL and RATE or COUNTS columns")
    for hdu in tables:
        if str(hdu.header.get("HDUCLAS1", "")).strip().upper() == "SPECTRUM":
            return hdu
    return tables[0]


def _ebounds(hdul):
    for hdu in hdul:
        if not isinstance(hdu, fits.BinTableHDU):
            continue
        if hdu.name.upper() == "EBOUNDS" or \
                str(hdu.header.get("HDUCLAS2", "")).strip().upper() == "EBOUNDS":
            return hdu
    raise ValueError("the response has no EBOUNDS extension (channel energies)")


def plot_spectrum(spectrum, *, ax=None, per_kev=False, title=None):
    """Plot a count spectrum against energy, on log axes.

    Each channel is drawn at the middle of its energy range (``E_MIN``,
    ``E_MAX`` of the response's ``EBOUNDS``) with the range as horizontal
    error bar and the statistical error as vertical one.  Channels with a
    non-positive rate (which log axes cannot show) or a bad ``QUALITY`` are
    left out.

    Parameters
    ----------
    spectrum : `~astroquery_mmoda.integral.Spectrum` or tuple
        A spectrum with its responses, or a ``(spectrum HDUList, RMF
        HDUList)`` pair.
    ax : `~matplotlib.axes.Axes`, optional
        Where to draw (default: a new figure).
    per_kev : bool
        Divide each channel's rate by its width (counts/s/keV) instead of
        showing the rate per channel.
    title : str, optional
        Default: the source name and instrument.

    Returns
    -------
    `~matplotlib.axes.Axes`

    Examples
    --------
    >>> from astropy.coordinates import SkyCoord
    >>> from astroquery_mmoda import Mmoda
    >>> spectra = Mmoda.get_spectrum(SkyCoord(258.5, -38.0, unit="deg"), start_time="2003-03-15",
    ...                              end_time="2003-03-16", max_pointings=10)  # doctest: +SKIP
    >>> ax = plot_spectrum(spectra["OAO 1657-415"], per_kev=True)  # doctest: +SKIP
    """
    if isinstance(spectrum, (tuple, list)) and not isinstance(spectrum, fits.HDUList) \
            and len(spectrum) == 2:
        spectrum_hdul, rmf = spectrum
        name = None
    elif hasattr(spectrum, "spectrum") and hasattr(spectrum, "rmf"):
        spectrum_hdul, rmf, name = spectrum.spectrum, spectrum.rmf, spectrum.src_name
    else:
        raise TypeError("plot_spectrum needs an integral.Spectrum or a (spectrum, rmf) pair of "
                        f"HDULists, not {type(spectrum).__name__}")
    table = _spectrum_table(spectrum_hdul)
    bounds = _ebounds(rmf)
    header, data, columns = table.header, table.data, table.columns

    channels = np.asarray(data["CHANNEL"], dtype=int)
    if "RATE" in columns.names:
        rate = np.asarray(data["RATE"], dtype=float)
        error = np.asarray(data["STAT_ERR"], dtype=float) if "STAT_ERR" in columns.names else None
        unit = u.Unit(columns["RATE"].unit or "ct/s", parse_strict="silent")
    else:
        exposure = float(header.get("EXPOSURE", 0) or 0)
        if not exposure > 0:
            raise ValueError("the spectrum has COUNTS but no positive EXPOSURE")
        counts = np.asarray(data["COUNTS"], dtype=float)
        rate = counts / exposure
        error = (np.asarray(data["STAT_ERR"], dtype=float) if "STAT_ERR" in columns.names
                 else np.sqrt(np.clip(counts, 0, None))) / exposure
        unit = u.ct / u.s

    energy_unit = u.Unit(bounds.columns["E_MIN"].unit or "keV", parse_strict="silent")
    lookup = {int(c): (lo, hi) for c, lo, hi in zip(bounds.data["CHANNEL"], bounds.data["E_MIN"],
                                                    bounds.data["E_MAX"])}
    missing = [c for c in channels if int(c) not in lookup]
    if missing:
        raise ValueError(f"{len(missing)} channels of the spectrum (e.g. {missing[0]}) are not in "
                         "the response's EBOUNDS")
    low = (np.array([lookup[int(c)][0] for c in channels], dtype=float) * energy_unit).to_value(u.keV)
    high = (np.array([lookup[int(c)][1] for c in channels], dtype=float) * energy_unit).to_value(u.keV)

    keep = np.isfinite(rate) & (rate > 0) & (high > low) & (low > 0)
    if "QUALITY" in columns.names:
        keep &= np.asarray(data["QUALITY"]) == 0
    centre, half = (low + high) / 2, (high - low) / 2
    if per_kev:
        width = high - low
        rate, error = rate / width, None if error is None else error / width
        unit = unit / u.keV
    ax = _new_axes(ax)
    ax.errorbar(centre[keep], rate[keep], xerr=half[keep],
                yerr=None if error is None else error[keep], fmt="o", markersize=3, linewidth=1,
                capsize=0)
    ax.set_xscale("log")
    ax.set_yscale("log")
    _plain_log_ticks(ax.xaxis)
    ax.set_xlabel("Energy [keV]")
    ax.set_ylabel(("Count rate per keV" if per_kev else "Count rate per channel") + _unit_text(unit))
    if title is None:
        name = name or str(header.get("NAME", "")).strip()
        title = _plain(_title(name, _header_instrument(header, table.name)))
    if title:
        ax.set_title(title)
    return ax
