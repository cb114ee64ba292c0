"""Spectra with their responses (ARF, RMF), folded from the sky model."""
import math

import numpy as np

from .fits_common import _ISGRI, _JEMX, _grouping_hdu, _seed, _source_keys, _table_hdu, _time_keys, _write


_RESPONSES = {
    "isgri": {"channels": np.geomspace(13.0, 1000.0, 63), "energies": np.geomspace(13.0, 1000.0, 151)},
    "jemx": {"channels": np.geomspace(3.0, 35.0, 33), "energies": np.geomspace(2.0, 40.0, 101)},
}


def _effective_area(instrument, energy):
    if instrument == "isgri":
        threshold = 1.0 / (1.0 + np.exp(-(energy - 18.0) / 2.0))
        return 1100.0 * threshold * np.exp(-(energy / 300.0) ** 1.3)
    window = 1.0 - np.exp(-(energy / 3.2) ** 3)
    return 95.0 * window / (1.0 + (energy / 22.0) ** 4)


def _resolution_sigma(instrument, energy):
    if instrument == "isgri":
        return 8.0 / 2.3548 * np.sqrt(energy / 100.0)
    return energy * 0.4 * np.sqrt(1.0 / energy + 1.0 / 60.0) / 2.3548


def _response(instrument):
    """(channel edges, energy edges, ARF, redistribution matrix)."""
    grids = _RESPONSES[instrument]
    channels, energies = grids["channels"], grids["energies"]
    centres = np.sqrt(energies[1:] * energies[:-1])
    sigma = _resolution_sigma(instrument, centres)
    erf = np.frompyfunc(math.erf, 1, 1)
    edges = erf((channels[None, :] - centres[:, None]) / (math.sqrt(2.0) * sigma[:, None])).astype(float)
    matrix = 0.5 * np.diff(edges, axis=1)
    return channels, energies, _effective_area(instrument, centres), matrix


def _model_counts(source, channels, energies, arf, matrix):
    """Folded count rate per channel (count/s), normalised to the source's band rate."""
    centres = np.sqrt(energies[1:] * energies[:-1])
    photons = centres ** -source.photon_index * np.diff(energies)
    if source.cutoff_kev:
        photons = photons * np.exp(-centres / source.cutoff_kev)
    counts = (photons * arf) @ matrix
    band = _band_channels(source.observation, channels)
    return counts * source.rate / counts[band].sum()


def _band_channels(observation, channels):
    centres = np.sqrt(channels[1:] * channels[:-1])
    return (centres >= observation.e_min) & (centres <= observation.e_max)


def _background_shape(instrument, channels):
    centres = np.sqrt(channels[1:] * channels[:-1])
    if instrument == "isgri":
        lines = 0.6 * np.exp(-0.5 * ((centres - 59.0) / 3.0) ** 2) + 0.4 * np.exp(
            -0.5 * ((centres - 75.0) / 3.5) ** 2)
        return np.diff(channels) * ((centres / 30.0) ** -1.3 + lines)
    return np.diff(channels) * (centres / 10.0) ** -0.5


def _spectrum_hdus(source, response):
    observation = source.observation
    names = _ISGRI if source.instrument == "isgri" else _JEMX
    channels, energies, arf, matrix = response
    nchan, nbin = len(channels) - 1, len(energies) - 1
    model = _model_counts(source, channels, energies, arf, matrix)
    # Background-dominated errors whose band total matches the image noise at the source.
    band = _band_channels(observation, channels)
    background = _background_shape(source.instrument, channels)
    band_sigma = source.rate / source.significance
    errors = np.sqrt(background / background[band].sum()) * band_sigma
    rng = np.random.default_rng(_seed("spectrum", source.name))
    rate = model + rng.normal(size=nchan) * errors
    low = channels[1:] <= (15.0 if source.instrument == "isgri" else 3.0)
    quality = np.where(low, 1, 0).astype(np.int16)
    exposure = observation.ontime * 0.8 if source.instrument == "isgri" else observation.ontime
    common = {"HDUCLASS": "OGIP", "TELESCOP": "INTEGRAL", "INSTRUME": names["instrume"],
              "DETNAM": names["detnam"], "CHANTYPE": "PI", "DETCHANS": nchan}

    spectrum_name = ("ISGR-EVTS-SPE" if source.instrument == "isgri" else "JMX2-PHA1-SPE")
    spec_keys = dict(common, HDUCLAS1="SPECTRUM", HDUCLAS2="NET", HDUCLAS3="RATE", HDUVERS="1.2.1",
                     EXPOSURE=exposure, AREASCAL=1.0, BACKSCAL=1.0, CORRSCAL=0.0, BACKFILE="NONE",
                     CORRFILE="NONE", RESPFILE="NONE", ANCRFILE="NONE", POISSERR=False,
                     ORIGIN="synthetic", CREATOR="astroquery_mmoda test sky", TLMIN1=0, TLMAX1=nchan - 1)
    spec_keys.update(_source_keys(source))
    spec_keys.update(_time_keys(observation))
    spectrum = _table_hdu(spectrum_name, [
        dict(name="CHANNEL", format="1I", array=np.arange(nchan, dtype=np.int16)),
        dict(name="RATE", format="1E", unit="count/s", array=rate),
        dict(name="SYS_ERR", format="1E", array=np.zeros(nchan)),
        dict(name="STAT_ERR", format="1E", unit="count/s", array=errors),
        dict(name="QUALITY", format="1I", array=quality),
        dict(name="GROUPING", format="1I", array=np.zeros(nchan, np.int16))], spec_keys)

    arf_name = "ISGR-ARF.-RSP" if source.instrument == "isgri" else "JMX2-AXIS-ARF"
    arf_hdu = _table_hdu(arf_name, [
        dict(name="ENERG_LO", format="1E", unit="keV", array=energies[:-1]),
        dict(name="ENERG_HI", format="1E", unit="keV", array=energies[1:]),
        dict(name="SPECRESP", format="1E", unit="cm**2", array=arf)],
        dict(common, HDUCLAS1="RESPONSE", HDUCLAS2="SPECRESP", HDUVERS="1.1.0"))

    rmf_name = "ISGR-RMF.-RSP" if source.instrument == "isgri" else "JMX2-RMF.-RSP"
    rmf_hdu = _table_hdu(rmf_name, [
        dict(name="ENERG_LO", format="1E", unit="keV", array=energies[:-1]),
        dict(name="ENERG_HI", format="1E", unit="keV", array=energies[1:]),
        dict(name="N_GRP", format="1I", array=np.ones(nbin, np.int16)),
        dict(name="F_CHAN", format="1I", array=np.zeros(nbin, np.int16)),
        dict(name="N_CHAN", format="1I", array=np.full(nbin, nchan, np.int16)),
        dict(name="MATRIX", format=f"{nchan}E", array=matrix.astype(np.float32))],
        dict(common, HDUCLAS1="RESPONSE", HDUCLAS2="RSP_MATRIX", HDUCLAS3="REDIST", HDUVERS="1.3.0",
             LO_THRES=0.0, TLMIN4=0, TLMAX4=nchan - 1))
    ebounds_name = "ISGR-EBDS-MOD" if source.instrument == "isgri" else "JMX2-FBDS-MOD"
    ebounds = _table_hdu(ebounds_name, [
        dict(name="CHANNEL", format="1I", array=np.arange(nchan, dtype=np.int16)),
        dict(name="E_MIN", format="1E", unit="keV", array=channels[:-1]),
        dict(name="E_MAX", format="1E", unit="keV", array=channels[1:])],
        dict(common, HDUCLAS1="RESPONSE", HDUCLAS2="EBOUNDS", HDUVERS="1.2.0", TLMIN1=0,
             TLMAX1=nchan - 1))
    return spectrum, arf_hdu, rmf_hdu, ebounds


def _write_isgri_spectra(folder, source, response):
    spectrum, arf, rmf, ebounds = _spectrum_hdus(source, response)
    grouping = _grouping_hdu([(rmf.name,), (ebounds.name,)], source.observation, member_type="BINTABLE")
    return [_write(folder / f"query_spectrum_isgri_sum_{source.name}.fits", [spectrum]),
            _write(folder / f"query_spectrum_arf_sum_{source.name}.fits", [arf]),
            _write(folder / f"query_spectrum_rmf_sum_{source.name}.fits", [grouping, rmf, ebounds])]


def _write_jemx_spectra(folder, source, response):
    spectrum, arf, rmf, ebounds = _spectrum_hdus(source, response)
    # The jemx plugin reads these three names whatever the source.
    return [_write(folder / "jemx_query_spectrum_spec_Crab_pha.fits.gz", [spectrum]),
            _write(folder / "jemx_query_spectrum_arf_Crab.fits.gz", [arf]),
            _write(folder / "jemx_query_spectrum_rmf_Crab.fits.gz", [rmf, ebounds])]
