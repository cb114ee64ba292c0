"""INTEGRAL results as astropy objects: catalogs, images, light curves, spectra.

Shapes the decoded products of an INTEGRAL job (a
`~astroquery_mmoda.products.ProductSet`) for the ``Mmoda`` INTEGRAL methods.
No HTTP here.
"""
import numbers
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from astropy import units as u
from astropy.io import fits
from astropy.time import Time, TimeDelta

from .callers import user_stacklevel
from .display import html_table, missing_name
from .exceptions import InvalidQueryError, ProtocolError
from .writing import write_files
from .xspec import set_xspec_options

__all__ = ["LightCurveSet", "Spectrum", "SpectrumSet", "catalog_result", "group_spectra",
           "images_result", "lightcurve_result", "lightcurve_to_timeseries", "select_sources",
           "shape_catalog"]


# -- catalogs -----------------------------------------------------------------------

def shape_catalog(table, *, meta):
    """Give a decoded source catalog units and descriptive meta-data."""
    table = table.copy(copy_data=False)
    for name in ("ra", "dec", "ERR_RAD"):
        if name in table.colnames and table[name].unit is None:
            table[name].unit = u.deg
    table.meta.update(meta)
    return table


def catalog_result(products, *, meta):
    """The source catalog of an image job, shaped (an empty Table, with a warning, when none came)."""
    catalogs = [name for name in products if products.kind[name] == "catalog"]
    if not catalogs:
        from astropy.table import Table
        from astroquery.exceptions import NoResultsWarning

        warnings.warn(f"MMODA returned no source catalog for this {meta['instrument']} image",
                      NoResultsWarning, stacklevel=user_stacklevel())
        return Table(meta=meta)
    return shape_catalog(products[catalogs[0]], meta=meta)


def images_result(products):
    """The FITS images (mosaic HDULists) of an image job."""
    return [products[name] for name in products if products.kind[name] == "fits"]


def select_sources(catalog, *, min_significance=8.0, include_new=False):
    """The sources of a catalog worth a spectrum or light curve.

    Keeps sources at least ``min_significance`` sigma and, unless
    ``include_new``, drops those whose name contains "NEW" (new, unidentified
    excesses).

    Parameters
    ----------
    catalog : `~astropy.table.Table`
        As returned by ``Mmoda.query_region``.

    Returns
    -------
    `~astropy.table.Table`

    Examples
    --------
    >>> from astropy.table import Table
    >>> catalog = Table({"src_names": ["Crab", "NEW_1", "faint"], "significance": [80., 12., 3.]})
    >>> select_sources(catalog)["src_names"].tolist()
    ['Crab']
    """
    if isinstance(min_significance, bool) or not isinstance(min_significance, numbers.Real) \
            or not np.isfinite(min_significance):
        raise InvalidQueryError(f"min_significance must be a number of sigma, not {min_significance!r}")
    if not hasattr(catalog, "colnames") or "significance" not in catalog.colnames:
        raise InvalidQueryError("select_sources takes a catalog Table with a 'significance' column, "
                                "as returned by Mmoda.query_region")
    keep = np.asarray(catalog["significance"], dtype=float) >= min_significance
    if not include_new:
        keep &= np.array(["NEW" not in str(name) for name in catalog["src_names"]], dtype=bool)
    return catalog[keep]


# -- light curves -------------------------------------------------------------------

def _header_time_reference(header):
    scale = str(header.get("TIMESYS", "TT")).strip().lower()
    if scale not in Time.SCALES:
        scale = "tt"
    mjdref = header.get("MJDREF")
    if mjdref is None and "MJDREFI" in header:
        mjdref = header["MJDREFI"] + header.get("MJDREFF", 0.0)
    if mjdref is None:
        raise ProtocolError("the light curve has no MJDREF: its times cannot be placed")
    return Time(float(mjdref), format="mjd", scale=scale) + \
        TimeDelta(float(header.get("TIMEZERO", 0.0)) * u.d
                  if str(header.get("TIMEUNIT", "d")).strip() == "d"
                  else float(header.get("TIMEZERO", 0.0)) * u.s)


def _column_unit(hdu, name, default):
    unit = hdu.columns[name].unit if name in hdu.columns.names else None
    if not unit:
        unit = hdu.header.get("TIMEUNIT", default) if name in ("TIME", "TIMEDEL", "XAX_E") else default
    try:
        return u.Unit(unit.strip() if isinstance(unit, str) else unit, parse_strict="silent")
    except (ValueError, TypeError):
        return u.Unit(default)


def _lightcurve_hdu(hdul):
    for hdu in hdul[1:]:
        if isinstance(hdu, fits.BinTableHDU) and "TIME" in hdu.columns.names \
                and "RATE" in hdu.columns.names:
            return hdu
    raise ProtocolError("the light-curve product has no table with TIME and RATE columns")


def _header_band(header):
    """``[E_MIN, E_MAX] * u.keV`` of a light curve's header, or None."""
    try:
        low, high = float(header["E_MIN"]), float(header["E_MAX"])
    except (KeyError, TypeError, ValueError):
        return None
    return [low, high] * u.keV if np.isfinite(low) and np.isfinite(high) and low < high else None


def lightcurve_to_timeseries(hdul, *, meta=None, drop_empty=False):
    """A FITS light curve as a `~astropy.timeseries.TimeSeries`.

    The ``TIME`` column is placed on the time axis with the header's
    ``MJDREF``/``TIMEZERO``/``TIMESYS`` and the column's unit (days for
    ISGRI/JEM-X IJD, seconds for SPI-ACS).

    Returns
    -------
    `~astropy.timeseries.TimeSeries`
        Columns ``time`` (bin centre, UTC, shown as ISO dates), ``time_bin``
        (width, s), ``rate``, ``rate_err``, ``fracexp`` (when present) and
        ``empty`` (no exposure or no valid rate).  ``meta['energy_range']`` is
        the band of the data (header ``E_MIN``/``E_MAX``) when the file says it,
        else the one asked for.
    """
    from astropy.timeseries import TimeSeries

    hdu = _lightcurve_hdu(hdul)
    data = hdu.data
    header = hdu.header
    reference = _header_time_reference(header)
    time_unit = _column_unit(hdu, "TIME", "d")
    times = reference + TimeDelta(np.asarray(data["TIME"], dtype=float) * time_unit)

    if "TIMEDEL" in hdu.columns.names:
        widths = np.asarray(data["TIMEDEL"], dtype=float) * _column_unit(hdu, "TIMEDEL", "d")
    elif "XAX_E" in hdu.columns.names:
        widths = 2 * np.asarray(data["XAX_E"], dtype=float) * _column_unit(hdu, "XAX_E", "d")
    elif "TIMEDEL" in header:
        unit = u.Unit(str(header.get("TIMEUNIT", time_unit)).strip() or time_unit)
        widths = np.full(len(data), float(header["TIMEDEL"])) * unit
    else:
        widths = np.full(len(data), np.nan) * u.s

    rate_unit = _column_unit(hdu, "RATE", "ct/s")
    rate = np.asarray(data["RATE"], dtype=float) * rate_unit
    error_name = "ERROR" if "ERROR" in hdu.columns.names else None
    columns = {"time_bin": widths.to(u.s), "rate": rate}
    if error_name:
        columns["rate_err"] = np.asarray(data[error_name], dtype=float) * \
            _column_unit(hdu, error_name, str(rate_unit))
    empty = ~np.isfinite(rate.value)
    if "FRACEXP" in hdu.columns.names:
        fracexp = np.asarray(data["FRACEXP"], dtype=float)
        columns["fracexp"] = fracexp
        empty |= ~(fracexp > 0)
    columns["empty"] = empty
    # Shown in UTC, as dates: what the plots and the request say (the file's TT is 64 s off).
    times = times.utc
    times.format = "isot"
    series = TimeSeries(time=times, data=columns)
    series.meta.update(meta or {})
    series.meta.setdefault("src_name", str(header.get("NAME", "")).strip())
    series.meta["time_scale"] = times.scale
    band = _header_band(header)
    if band is not None:  # the band of the data wins over the one asked for
        series.meta["energy_range"] = band
    if drop_empty:
        series = series[~series["empty"]]
    return series


def lightcurve_result(products, *, meta, drop_empty=False):
    """The light curves of a light-curve job as a `LightCurveSet` keyed by source name."""
    series, hdulists = {}, {}
    for name in products:
        if products.kind[name] != "fits":
            continue
        item_meta = products.meta[name]
        hdul = products[name]
        lc = lightcurve_to_timeseries(hdul, meta=dict(meta), drop_empty=drop_empty)
        source = str(item_meta.get("src_name") or lc.meta.get("src_name") or name).strip()
        if source == "query":  # SPI-ACS names its only light curve so
            source = lc.meta["src_name"] = "SPI-ACS"
        lc.meta["src_name"] = source
        series[source] = lc
        hdulists[source] = hdul
    return LightCurveSet(series, hdulists=hdulists, products=products, meta=meta)


class _NamedResults(Mapping):
    """Read-only mapping of source names to per-source results."""

    _what = "result"

    def __init__(self, items, *, products=None, meta=None):
        self._items = dict(items)
        self.products = products
        self.meta = dict(meta or {})

    def __getitem__(self, name):
        try:
            return self._items[name]
        except KeyError:
            raise missing_name(name, self._items, self._what) from None

    def _repr_html_(self):
        names, rows = self._html_rows()
        caption = f"{type(self).__name__}: {len(self)} ({self.meta.get('instrument', '?')})"
        if self.meta.get("job_id"):
            caption += f", job {self.meta['job_id']}"
        if self.meta.get("campaign"):
            caption += f", campaign {self.meta['campaign']}"
        return html_table(names, rows, caption=caption)

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)


class LightCurveSet(_NamedResults):
    """Light curves keyed by source name (a read-only mapping).

    Attributes
    ----------
    hdulists : dict
        The raw FITS light curves, by source name.
    products : `~astroquery_mmoda.products.ProductSet`
        Everything the job returned.
    meta : dict
        Instrument, energy band, time range, job id.

    Examples
    --------
    >>> from astropy.timeseries import TimeSeries
    >>> series = TimeSeries(time_start="2003-03-15T00:00:00", time_delta=1000 * u.s,
    ...                     data={"rate": [1.5, 2.0, 1.8] * u.ct / u.s})
    >>> LightCurveSet({"Crab": series}, hdulists={}, meta={"instrument": "isgri"})
    <LightCurveSet: 1 light curve (isgri)>
      'Crab': 3 bins
    """

    _what = "light curve"

    def __init__(self, items, *, hdulists, products=None, meta=None):
        super().__init__(items, products=products, meta=meta)
        self.hdulists = dict(hdulists)

    def _html_rows(self):
        rows = []
        for name, series in self.items():
            times = series.time
            span = (f"{times.min().utc.isot[:19]} – {times.max().utc.isot[:19]}" if len(series) else "")
            empty = int(np.sum(series["empty"])) if "empty" in series.colnames else 0
            rows.append([name, len(series), empty, span])
        return ["source", "bins", "empty bins", "time (UTC)"], rows

    def __repr__(self):
        lines = [f"<LightCurveSet: {len(self)} light curve{'s' if len(self) != 1 else ''}"
                 f" ({self.meta.get('instrument', '?')})>"]
        for name, series in self.items():
            lines.append(f"  {name!r}: {len(series)} bins")
        return "\n".join(lines)


#: Longest base of a spectrum's file names (FITS keeps file names of 68 characters in one card).
MAX_NAME_LENGTH = 48
_SPECTRUM_PARTS = ("spectrum", "arf", "rmf")


def _safe_file_name(text):
    name = re.sub(r"[^A-Za-z0-9+._-]+", "_", text.strip()).strip("._")
    return name[:MAX_NAME_LENGTH].rstrip("._") or "source"


def _unique_base(base, taken):
    """``base``, or ``base_2``, ``base_3``... when a name of ``taken`` (lower case) has it already."""
    candidate, number = base, 1
    while candidate.lower() in taken:
        number += 1
        candidate = f"{base}_{number}"
    taken.add(candidate.lower())
    return candidate


@dataclass
class Spectrum:
    """A source's spectrum with its responses, ready for XSPEC.

    Attributes
    ----------
    src_name : str
    spectrum, arf, rmf : `~astropy.io.fits.HDUList`

    Examples
    --------
    >>> import tempfile
    >>> hdul = fits.HDUList([fits.PrimaryHDU()])
    >>> spectrum = Spectrum("4U 1700-377", spectrum=hdul, arf=hdul, rmf=hdul)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print([path.name for path in spectrum.write(folder).values()])
    ['4U_1700-377_spectrum.fits', '4U_1700-377_arf.fits', '4U_1700-377_rmf.fits']
    """
    src_name: str
    spectrum: fits.HDUList
    arf: fits.HDUList
    rmf: fits.HDUList

    def __repr__(self):
        return f"<Spectrum {self.src_name!r}: spectrum, arf, rmf>"

    def write(self, directory=".", *, overwrite=False, prefix="", systematic_fraction=None,
              min_counts=None):
        """Write the three files, with ``RESPFILE``/``ANCRFILE`` pointing at each other.

        File names are ``prefix`` plus the source name reduced to letters,
        digits and ``+._-`` (at most `MAX_NAME_LENGTH` characters), then
        ``_spectrum.fits``, ``_arf.fits`` and ``_rmf.fits``.  The three files
        are written all or nothing with the package's safe writer
        (`astroquery_mmoda.writing`).

        Parameters
        ----------
        directory : path-like
            Created if needed.
        overwrite : bool
            Replace existing files.  If False (default) and any of the three
            exists, nothing is written.
        prefix : str
            Put before each file name.
        systematic_fraction : float, optional
            The fractional systematic error of every channel (``SYS_ERR``),
            as oda_api's ``systematic_fraction``.
        min_counts : float, optional
            Group adjacent channels to at least this many counts each
            (``GROUPING``, as ``grppha``'s ``group min``).

        Returns
        -------
        dict
            ``{"spectrum": path, "arf": path, "rmf": path}``.

        Raises
        ------
        FileExistsError
            When ``overwrite`` is False and a file exists already.
        astroquery_mmoda.writing.UnsafeTargetError
            When a target is a symbolic link or not a regular file.
        """
        directory = Path(directory)
        plan = self._file_plan(directory, _safe_file_name(prefix + self.src_name),
                               systematic_fraction=systematic_fraction, min_counts=min_counts)
        directory.mkdir(parents=True, exist_ok=True)
        write_files(plan.values(), overwrite=overwrite)
        return {kind: path for kind, (path, _) in plan.items()}

    def _file_plan(self, directory, base, **xspec_options):
        """``{part: (path, content)}`` of the three files named from ``base``."""
        names = {kind: f"{base}_{kind}.fits" for kind in _SPECTRUM_PARTS}
        spectrum = fits.HDUList([hdu.copy() for hdu in self.spectrum])
        for index, hdu in enumerate(spectrum[1:], 1):
            if hdu.header.get("HDUCLAS1") == "SPECTRUM" or index == 1:
                if any(value is not None for value in xspec_options.values()):
                    hdu = spectrum[index] = set_xspec_options(hdu, **xspec_options)
                _set_card(hdu.header, "RESPFILE", names["rmf"], "redistribution matrix")
                _set_card(hdu.header, "ANCRFILE", names["arf"], "ancillary response")
                hdu.header.setdefault("BACKFILE", "NONE")
                hdu.header.setdefault("CORRFILE", "NONE")
        return {kind: (directory / names[kind], hdul.writeto)
                for kind, hdul in zip(_SPECTRUM_PARTS, (spectrum, self.arf, self.rmf))}


def _set_card(header, keyword, value, comment):
    # A comment that does not fit the 80-character card is left out (astropy would warn).
    header[keyword] = (value, comment) if len(value) + len(comment) <= 64 else value


class SpectrumSet(_NamedResults):
    """Spectra keyed by source name (a read-only mapping of `Spectrum`).

    Examples
    --------
    >>> hdul = fits.HDUList([fits.PrimaryHDU()])
    >>> spectra = SpectrumSet({"Crab": Spectrum("Crab", hdul, hdul, hdul)}, meta={"instrument": "isgri"})
    >>> spectra, spectra["Crab"]
    (<SpectrumSet: 1 source (isgri): 'Crab'>, <Spectrum 'Crab': spectrum, arf, rmf>)
    >>> spectra["crab"]
    Traceback (most recent call last):
    KeyError: "no spectrum 'crab' (did you mean 'Crab'?); there are: 'Crab'"
    """

    _what = "spectrum"

    def write(self, directory=".", *, overwrite=False, prefix="", systematic_fraction=None,
              min_counts=None):
        """Write every source's spectrum, ARF and RMF, all or nothing.

        Names as for `Spectrum.write`; sources whose names give the same file
        names (``4U 1700-377``, ``4U_1700-377``, ``4U/1700-377``) get ``_2``,
        ``_3``, ... in the set's order, as `~astroquery_mmoda.products.ProductSet.write`
        does.  Every target is checked before anything is written.

        Parameters
        ----------
        directory : path-like
            Created if needed.
        overwrite : bool
            Replace existing files.  If False (default) and any target
            exists, nothing is written.
        prefix : str
            Put before each file name.
        systematic_fraction, min_counts : float, optional
            As for `Spectrum.write`.

        Returns
        -------
        dict
            ``{source name: {"spectrum": path, "arf": path, "rmf": path}}``.

        Raises
        ------
        FileExistsError, astroquery_mmoda.writing.UnsafeTargetError
            As for `Spectrum.write`; then no file is written.
        """
        directory = Path(directory)
        plans, taken = {}, set()
        for name, spectrum in self.items():
            base = _unique_base(_safe_file_name(prefix + name), taken)
            plans[name] = spectrum._file_plan(directory, base, systematic_fraction=systematic_fraction,
                                              min_counts=min_counts)
        directory.mkdir(parents=True, exist_ok=True)
        write_files([item for plan in plans.values() for item in plan.values()], overwrite=overwrite)
        return {name: {kind: path for kind, (path, _) in plan.items()} for name, plan in plans.items()}

    def _html_rows(self):
        rows = []
        for name, spectrum in self.items():
            header = spectrum.spectrum[1].header if len(spectrum.spectrum) > 1 else {}
            rows.append([name, header.get("DETCHANS", ""), header.get("EXPOSURE", ""), "spectrum, arf, rmf"])
        return ["source", "channels", "exposure (s)", "files"], rows

    def __repr__(self):
        return (f"<SpectrumSet: {len(self)} source{'s' if len(self) != 1 else ''}"
                f" ({self.meta.get('instrument', '?')}): {', '.join(map(repr, self))}>")


_SPECTRUM_KINDS = {"spectrum": "spectrum", "arf": "arf", "rmf": "rmf"}


def group_spectra(products, *, meta):
    """Group a spectrum job's products by source into a `SpectrumSet`."""
    found = {}
    for name, hdul in products.items():
        item_meta = products.meta[name] if hasattr(products, "meta") else {}
        kind = str(item_meta.get("product", "")).rsplit("_", 1)[-1]
        source = str(item_meta.get("src_name", "")).strip()
        if kind in _SPECTRUM_KINDS and source and isinstance(hdul, fits.HDUList):
            found.setdefault(source, {})[kind] = hdul
    spectra = {}
    for source, parts in found.items():
        missing = set(_SPECTRUM_KINDS) - set(parts)
        if missing:
            raise ProtocolError(f"the spectrum of {source!r} came without its "
                                f"{', '.join(sorted(missing))}")
        spectra[source] = Spectrum(source, parts["spectrum"], parts["arf"], parts["rmf"])
    return SpectrumSet(spectra, products=products, meta=meta)
