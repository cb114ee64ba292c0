"""Co-adding the mosaic images of many jobs on one sky grid.

Each part's intensity and variance maps are placed on the common grid (with
`reproject` when the grids differ) and co-added with inverse-variance
weights; significance and exposure are then recomputed.  Only the running
sums are kept.
"""
import numpy as np
from astropy.io import fits
from astropy.wcs import WCS

from ..exceptions import InvalidQueryError

__all__ = ["MosaicCombiner", "combine_mosaics", "mosaic_maps"]

# OSA's IMATYPE names (ISGRI, then JEM-X) of the maps a combination needs.
_KINDS = {"INTENSITY": "intensity", "RECONSTRUCTED": "intensity", "VARIANCE": "variance",
          "SIGNIFICANCE": "significance", "RECON_SIG": "significance", "EXPOSURE": "exposure"}
_NEEDED = ("intensity", "variance", "exposure")


def mosaic_maps(hdul):
    """The image HDUs of a mosaic by kind: ``intensity``, ``variance``, ``significance``, ``exposure``.

    Returns
    -------
    dict of `~astropy.io.fits.ImageHDU`
        The first HDU of each kind (a mosaic may hold several energy bands:
        the first band is taken).
    """
    maps = {}
    for hdu in hdul:
        if not isinstance(hdu, (fits.ImageHDU, fits.PrimaryHDU)) or hdu.data is None:
            continue
        kind = _KINDS.get(str(hdu.header.get("IMATYPE", "")).strip().upper())
        if kind and kind not in maps:
            maps[kind] = hdu
    missing = [kind for kind in _NEEDED if kind not in maps]
    if missing:
        raise InvalidQueryError(f"the mosaic has no {', '.join(missing)} map (IMATYPE) to combine")
    return maps


def _same_grid(wcs, shape, other_wcs, other_shape):
    if tuple(shape) != tuple(other_shape):
        return False
    return (np.allclose(wcs.wcs.crval, other_wcs.wcs.crval, rtol=0, atol=1e-9)
            and np.allclose(wcs.wcs.crpix, other_wcs.wcs.crpix, rtol=0, atol=1e-6)
            and np.allclose(wcs.pixel_scale_matrix, other_wcs.pixel_scale_matrix, rtol=1e-9, atol=0)
            and list(wcs.wcs.ctype) == list(other_wcs.wcs.ctype))


def _reproject(data, wcs, target_wcs, shape):
    try:
        from reproject import reproject_interp
    except ImportError:
        raise InvalidQueryError(
            "these mosaics lie on different sky grids: co-adding them needs the optional package "
            "'reproject' (pip install reproject)") from None
    values, footprint = reproject_interp((data, wcs), target_wcs, shape_out=tuple(shape))
    return np.where(footprint > 0, values, np.nan)


class MosaicCombiner:
    """One mosaic co-added from the mosaics of many jobs.

    Per pixel, with intensities :math:`I_i` and variances :math:`V_i`:
    :math:`I = \\sum (I_i/V_i) / \\sum (1/V_i)`, :math:`V = 1/\\sum (1/V_i)`,
    significance :math:`I/\\sqrt{V}`, exposure :math:`\\sum` of the parts'.
    Pixels without a valid, positive variance do not contribute.

    Parameters
    ----------
    wcs : `~astropy.wcs.WCS`, optional
        The common sky grid (celestial, 2-d), with ``shape``.  By default the
        first part's grid; give a wider one (e.g. from
        ``reproject.mosaicking.find_optimal_celestial_wcs``) to cover every
        part.
    shape : tuple of int, optional
        ``(ny, nx)`` of the common grid.

    Examples
    --------
    >>> def mosaic(value, variance):
    ...     hdus = [fits.PrimaryHDU()]
    ...     for kind, data in (("INTENSITY", value), ("VARIANCE", variance), ("EXPOSURE", 1000.)):
    ...         hdu = fits.ImageHDU(np.full((2, 2), data))
    ...         hdu.header.update(IMATYPE=kind, CTYPE1="RA---TAN", CTYPE2="DEC--TAN", CDELT1=-0.1,
    ...                           CDELT2=0.1, CRVAL1=83.6, CRVAL2=22.0, CRPIX1=1.5, CRPIX2=1.5)
    ...         hdus.append(hdu)
    ...     return fits.HDUList(hdus)
    >>> combined = combine_mosaics([("a", mosaic(1.0, 1.0)), ("b", mosaic(3.0, 3.0))])
    >>> [round(float(hdu.data[0, 0]), 4) for hdu in combined[1:]]
    [1.5, 0.75, 1.7321, 2000.0]
    """

    def __init__(self, *, wcs=None, shape=None):
        if (wcs is None) != (shape is None):
            raise InvalidQueryError("give both wcs and shape for the common grid, or neither")
        self._wcs = None if wcs is None else wcs.celestial
        self._shape = None if shape is None else tuple(int(n) for n in shape)
        self._header = None
        self._sums = None
        self.jobs = []

    def __len__(self):
        return len(self.jobs)

    def add(self, hdul, *, job):
        """Fold in one job's mosaic (an `~astropy.io.fits.HDUList`)."""
        maps = mosaic_maps(hdul)
        header = maps["intensity"].header
        wcs = WCS(header).celestial
        shape = maps["intensity"].data.shape[-2:]
        if self._wcs is None:
            self._wcs, self._shape = wcs, tuple(shape)
        if self._sums is None:
            self._header = header.copy()
            self._sums = {name: np.zeros(self._shape) for name in ("weighted", "weight", "exposure")}
            self._sums["ontime"] = 0.0
        same = _same_grid(wcs, shape, self._wcs, self._shape)
        planes = {}
        for kind in _NEEDED:
            data = np.asarray(maps[kind].data, dtype=float)
            data = data.reshape(data.shape[-2:]) if data.ndim > 2 else data
            planes[kind] = data if same else _reproject(data, wcs, self._wcs, self._shape)
        variance = planes["variance"]
        good = np.isfinite(variance) & (variance > 0) & np.isfinite(planes["intensity"])
        weight = np.where(good, 1.0 / np.where(good, variance, 1.0), 0.0)
        self._sums["weighted"] += np.where(good, planes["intensity"], 0.0) * weight
        self._sums["weight"] += weight
        self._sums["exposure"] += np.where(np.isfinite(planes["exposure"]), planes["exposure"], 0.0)
        self._sums["ontime"] += float(header.get("ONTIME", 0.0))
        self.jobs.append(str(job))

    def result(self):
        """The co-added mosaic.

        Returns
        -------
        `~astropy.io.fits.HDUList`
            A primary HDU and four images with ``IMATYPE`` ``INTENSITY``,
            ``VARIANCE``, ``SIGNIFICANCE`` and ``EXPOSURE`` on the common
            grid; pixels no part covers are NaN (exposure 0).  Headers carry
            ``NCOMBINE``, the summed ``ONTIME`` and one ``HISTORY`` line per
            job.
        """
        if self._sums is None:
            raise InvalidQueryError("no mosaic to combine")
        weight = self._sums["weight"]
        covered = weight > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            intensity = np.where(covered, self._sums["weighted"] / weight, np.nan)
            variance = np.where(covered, 1.0 / weight, np.nan)
            significance = intensity / np.sqrt(variance)
        grid = self._wcs.to_header()
        hdus = [fits.PrimaryHDU()]
        for kind, data, unit in (("INTENSITY", intensity, self._header.get("BUNIT", "count/s")),
                                 ("VARIANCE", variance, None), ("SIGNIFICANCE", significance, ""),
                                 ("EXPOSURE", self._sums["exposure"], "s")):
            hdu = fits.ImageHDU(data.astype(np.float32), name=self._header.get("EXTNAME", "MOSAIC"))
            for key in ("TELESCOP", "INSTRUME", "DETNAM", "E_MIN", "E_MAX", "RADESYS", "EQUINOX"):
                if key in self._header:
                    hdu.header[key] = self._header[key]
            hdu.header.update(grid)
            hdu.header["IMATYPE"] = kind
            if unit is not None:
                hdu.header["BUNIT"] = unit
            hdu.header["ONTIME"] = (self._sums["ontime"], "[s] summed over the combined mosaics")
            hdu.header["NCOMBINE"] = (len(self.jobs), "number of combined mosaics")
            for job in self.jobs:
                hdu.header.add_history(f"combined: job {job}")
            hdus.append(hdu)
        return fits.HDUList(hdus)


def combine_mosaics(parts, **options):
    """Co-add the mosaics of many jobs.

    Parameters
    ----------
    parts : iterable of (str, `~astropy.io.fits.HDUList`)
        ``(job label, mosaic)`` pairs; read one at a time.
    **options
        ``wcs`` and ``shape`` of the common grid (see `MosaicCombiner`).

    Returns
    -------
    `~astropy.io.fits.HDUList`
        See `MosaicCombiner.result`.
    """
    combiner = MosaicCombiner(**options)
    for job, hdul in parts:
        combiner.add(hdul, job=job)
    return combiner.result()
