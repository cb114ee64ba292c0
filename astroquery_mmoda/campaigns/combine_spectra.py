"""Summing the spectra of many jobs: one XSPEC-ready spectrum, ARF and RMF per source.

Parts are folded in as they arrive (`SpectrumCombiner.add`): only running
sums and the first part's headers are kept.
"""
import numpy as np
from astropy.io import fits

from ..exceptions import InvalidQueryError
from ..integral import Spectrum, SpectrumSet

__all__ = ["SpectrumCombiner", "SpectrumSetCombiner", "combine_spectra"]


def _table(hdul, column, what):
    for hdu in list(hdul)[1:]:
        if isinstance(hdu, fits.BinTableHDU) and column in hdu.columns.names:
            return hdu
    raise InvalidQueryError(f"the {what} has no table with a {column} column")


def _rows(data, name):
    """A matrix column as a list of 1-d float arrays (fixed or variable length)."""
    return [np.asarray(row, dtype=float).ravel() for row in data[name]]


class SpectrumCombiner:
    """One source's spectrum summed over many jobs.

    With exposures :math:`E_i`, rates :math:`R_i` and statistical errors
    :math:`\\sigma_i` the sum has exposure :math:`E = \\sum E_i`, rate
    :math:`\\sum E_i R_i / E` and error :math:`\\sqrt{\\sum E_i^2 \\sigma_i^2} / E`
    (independent errors, in quadrature).  The fractional systematic error
    ``SYS_ERR`` is correlated from one science window to the next, so it does
    not shrink: the sum gets its exposure-weighted mean.  ``QUALITY`` is the
    worst of the parts.  ARF (``SPECRESP``) and RMF (``MATRIX``) are averaged
    with the exposures as weights.

    Examples
    --------
    >>> def part(rate, exposure):
    ...     spectrum = fits.BinTableHDU.from_columns([
    ...         fits.Column("CHANNEL", "1I", array=[0, 1]), fits.Column("RATE", "1E", array=rate),
    ...         fits.Column("STAT_ERR", "1E", array=[1.0, 1.0])])
    ...     spectrum.header["EXPOSURE"] = exposure
    ...     arf = fits.BinTableHDU.from_columns([fits.Column("SPECRESP", "1E", array=[100., 100.])])
    ...     rmf = fits.BinTableHDU.from_columns([fits.Column("MATRIX", "2E", array=[[1., 0.], [0., 1.]])])
    ...     return Spectrum("Crab", *(fits.HDUList([fits.PrimaryHDU(), h]) for h in (spectrum, arf, rmf)))
    >>> combiner = SpectrumCombiner()
    >>> combiner.add(part([2., 4.], 1000.), job="a"); combiner.add(part([4., 4.], 3000.), job="b")
    >>> total = combiner.result()
    >>> total.spectrum[1].data["RATE"].tolist(), total.spectrum[1].header["EXPOSURE"]
    ([3.5, 4.0], 4000.0)
    """

    def __init__(self):
        self._template = None
        self._sums = None
        self.jobs = []

    def __len__(self):
        return len(self.jobs)

    def add(self, spectrum, *, job):
        """Fold in one job's `~astroquery_mmoda.integral.Spectrum` of this source.

        Raises
        ------
        astroquery.exceptions.InvalidQueryError
            If the part has no exposure, or its channels or energy grid differ
            from the first part's.
        """
        spec = _table(spectrum.spectrum, "RATE", "spectrum")
        arf = _table(spectrum.arf, "SPECRESP", "ARF")
        rmf = _table(spectrum.rmf, "MATRIX", "RMF")
        exposure = float(spec.header.get("EXPOSURE", 0.0))
        if not exposure > 0:
            raise InvalidQueryError(f"the spectrum of {spectrum.src_name!r} from job {job} has no "
                                    "exposure (EXPOSURE keyword): it cannot be weighted")
        rate = np.asarray(spec.data["RATE"], dtype=float)
        error = np.asarray(spec.data["STAT_ERR"], dtype=float) if "STAT_ERR" in spec.columns.names \
            else np.zeros(len(rate))
        sys_err = np.asarray(spec.data["SYS_ERR"], dtype=float) if "SYS_ERR" in spec.columns.names \
            else np.zeros(len(rate))
        matrix = _rows(rmf.data, "MATRIX")
        if self._template is None:
            self._template = {"src_name": spectrum.src_name,
                              "spectrum": fits.HDUList([hdu.copy() for hdu in spectrum.spectrum]),
                              "arf": fits.HDUList([hdu.copy() for hdu in spectrum.arf]),
                              "rmf": fits.HDUList([hdu.copy() for hdu in spectrum.rmf]),
                              "channels": self._channels(spec, len(rate)),
                              "energies": self._energies(arf), "shape": [len(m) for m in matrix]}
            self._sums = {"exposure": 0.0, "rate": np.zeros(len(rate)), "var": np.zeros(len(rate)),
                          "sys": np.zeros(len(rate)), "arf": np.zeros(len(arf.data)),
                          "rmf": [np.zeros(len(m)) for m in matrix],
                          "quality": np.zeros(len(rate), dtype=int), "ontime": 0.0,
                          "tstart": [], "tstop": []}
        self._check(spectrum.src_name, job, spec, len(rate), arf, matrix)
        sums = self._sums
        sums["exposure"] += exposure
        sums["rate"] += exposure * rate
        sums["var"] += (exposure * error) ** 2
        sums["sys"] += exposure * sys_err
        sums["arf"] += exposure * np.asarray(arf.data["SPECRESP"], dtype=float)
        for total, row in zip(sums["rmf"], matrix):
            total += exposure * row
        if "QUALITY" in spec.columns.names:
            sums["quality"] = np.maximum(sums["quality"], np.asarray(spec.data["QUALITY"], dtype=int))
        sums["ontime"] += float(spec.header.get("ONTIME", exposure))
        for key in ("tstart", "tstop"):
            if key.upper() in spec.header:
                sums[key].append(float(spec.header[key.upper()]))
        self.jobs.append(str(job))

    @staticmethod
    def _channels(spec, count):
        if "CHANNEL" in spec.columns.names:
            return np.asarray(spec.data["CHANNEL"]).copy()
        return np.arange(count)

    @staticmethod
    def _energies(arf):
        if "ENERG_LO" in arf.columns.names:
            return np.asarray(arf.data["ENERG_LO"], dtype=float).copy()
        return None

    def _check(self, source, job, spec, count, arf, matrix):
        template = self._template
        problem = None
        if not np.array_equal(self._channels(spec, count), template["channels"]):
            problem = "its channels"
        elif len(arf.data) != len(self._sums["arf"]) or (
                template["energies"] is not None
                and not np.allclose(self._energies(arf), template["energies"], rtol=1e-6)):
            problem = "the energy grid of its ARF"
        elif [len(m) for m in matrix] != template["shape"]:
            problem = "the layout of its RMF"
        if problem:
            raise InvalidQueryError(f"the spectrum of {source!r} from job {job}: {problem} differ from "
                                    f"those of job {self.jobs[0]}; spectra of different binnings or "
                                    "responses cannot be summed")

    def result(self):
        """The summed spectrum.

        Returns
        -------
        `~astroquery_mmoda.integral.Spectrum`
            Headers are the first part's, with ``EXPOSURE`` and ``ONTIME``
            summed, ``TSTART``/``TSTOP`` the earliest and latest, ``NCOMBINE``
            the number of parts and one ``HISTORY`` line per job; its
            ``write`` makes XSPEC-ready files.
        """
        if self._template is None:
            raise InvalidQueryError("no spectrum to combine")
        template, sums = self._template, self._sums
        exposure = sums["exposure"]
        spectrum = fits.HDUList([hdu.copy() for hdu in template["spectrum"]])
        spec = _table(spectrum, "RATE", "spectrum")
        spec.data["RATE"] = sums["rate"] / exposure
        if "STAT_ERR" in spec.columns.names:
            spec.data["STAT_ERR"] = np.sqrt(sums["var"]) / exposure
        if "SYS_ERR" in spec.columns.names:
            spec.data["SYS_ERR"] = sums["sys"] / exposure
        if "QUALITY" in spec.columns.names:
            spec.data["QUALITY"] = sums["quality"]
        header = spec.header
        header["EXPOSURE"] = (exposure, "[s] summed over the combined spectra")
        header["ONTIME"] = (sums["ontime"], "[s] summed over the combined spectra")
        if sums["tstart"]:
            header["TSTART"] = min(sums["tstart"])
        if sums["tstop"]:
            header["TSTOP"] = max(sums["tstop"])
        header["NCOMBINE"] = (len(self.jobs), "number of combined spectra")
        for job in self.jobs:
            header.add_history(f"combined: job {job}")

        arf_list = fits.HDUList([hdu.copy() for hdu in template["arf"]])
        _table(arf_list, "SPECRESP", "ARF").data["SPECRESP"] = sums["arf"] / exposure
        rmf_list = fits.HDUList([hdu.copy() for hdu in template["rmf"]])
        rmf = _table(rmf_list, "MATRIX", "RMF")
        _replace_matrix(rmf_list, rmf, [row / exposure for row in sums["rmf"]])
        return Spectrum(template["src_name"], spectrum, arf_list, rmf_list)


def _replace_matrix(hdul, hdu, rows):
    column = hdu.columns["MATRIX"]
    if not column.format.startswith(("P", "Q")):  # fixed width: write in place
        hdu.data["MATRIX"] = np.array(rows).reshape(hdu.data["MATRIX"].shape)
        return
    # Variable-length rows: rebuild the column with the new values.
    columns = [fits.Column(name=c.name, format=c.format, unit=c.unit,
                           array=(rows if c.name == "MATRIX" else hdu.data[c.name]))
               for c in hdu.columns]
    new = fits.BinTableHDU.from_columns(columns, header=hdu.header)
    hdul[hdul.index(hdu)] = new


class SpectrumSetCombiner:
    """Per-source sums of the `~astroquery_mmoda.integral.SpectrumSet` of many jobs."""

    def __init__(self):
        self._sources = {}

    def add(self, spectra, *, job):
        """Fold in one job's spectra (a mapping of source name to `Spectrum`)."""
        for name, spectrum in spectra.items():
            self._sources.setdefault(name, SpectrumCombiner()).add(spectrum, job=job)

    def result(self, meta=None):
        """A `~astroquery_mmoda.integral.SpectrumSet` of the summed spectra (by source name)."""
        return SpectrumSet({name: self._sources[name].result() for name in sorted(self._sources)},
                           meta=meta)


def combine_spectra(parts):
    """Sum one source's spectra of many jobs.

    Parameters
    ----------
    parts : iterable of (str, `~astroquery_mmoda.integral.Spectrum`)
        ``(job label, spectrum)`` pairs; read one at a time.

    Returns
    -------
    `~astroquery_mmoda.integral.Spectrum`
        See `SpectrumCombiner`.
    """
    combiner = SpectrumCombiner()
    for job, spectrum in parts:
        combiner.add(spectrum, job=job)
    return combiner.result()
