"""A synthetic INTEGRAL sky for the local dispatcher's INTEGRAL plugins.

``LocalDispatcher(integral=True)`` runs the dispatcher with the INTEGRAL plugins
(``isgri``, ``jemx``, ``spi_acs``).  Offline they have no archive to read, so
this module gives them one, generated at run time and deterministic:

* the product files that ``isgri`` and ``jemx`` read in ``query_type="Dummy"``
  mode, made from `TEST_SKY`: sky mosaics, source catalogs, spectra with their
  responses, light curves (`write_dummy_products`);
* `AcsService`, a loopback stand-in of the SPI-ACS light-curve web service that
  ``spi_acs`` calls in ``Real`` mode;
* `DdaService`, a loopback stand-in of the DDA analysis back-end of ``isgri`` and
  ``jemx`` in ``Real`` mode: it answers the connection test and refuses every
  analysis, so that such requests fail within seconds, except for two science
  windows: jobs of `SUBMITTED_SCW` stay ``submitted``, and ``isgri_lc`` of
  `LIGHTCURVE_SCW` gives one light curve per catalog source, as the public
  service does;
* `multi_source_lightcurve_envelope` and `ReplayDispatcher`: such a multi-source
  light-curve answer without a server (encoded by the dispatcher's own code),
  and a loopback server replaying prepared answers.

Times are INTEGRAL Julian Dates (IJD = MJD - 51544, in TT) as in OSA products.

Modules: `~astroquery_mmoda.testing.sky.model` (observations, sources, catalogs),
the FITS writers ``images``, ``spectra``, ``lightcurves`` (with ``fits_common``)
and ``dummy`` (the Dummy-mode folder), ``acs`` (the SPI-ACS data), ``services``
(the loopback stand-ins and their start-up) and ``envelope`` (multi-source light
curves in the public shape).
"""
from .acs import ACS_BURSTS, acs_light_curve_text
from .dummy import write_dummy_products
from .envelope import multi_source_lightcurve_envelope
from .lightcurves import write_isgri_lightcurve
from .model import (DEFAULT_DETECTION_THRESHOLD, DUMMY_FOLDER, IJD_MJDREF, ISGRI_OBSERVATION,
                    JEMX_OBSERVATION, LIGHTCURVE_SCW, SUBMITTED_SCW, TEST_SKY, Observation, SkySource,
                    catalog_dict, sky_sources, utc_to_ijd)
from .services import AcsService, DdaService, ReplayDispatcher, start_integral_services

__all__ = ["SkySource", "Observation", "TEST_SKY", "ISGRI_OBSERVATION", "JEMX_OBSERVATION",
           "ACS_BURSTS", "SUBMITTED_SCW", "LIGHTCURVE_SCW", "DUMMY_FOLDER", "DEFAULT_DETECTION_THRESHOLD",
           "IJD_MJDREF", "sky_sources", "catalog_dict", "utc_to_ijd", "write_dummy_products",
           "write_isgri_lightcurve", "acs_light_curve_text", "AcsService", "DdaService",
           "ReplayDispatcher", "start_integral_services", "multi_source_lightcurve_envelope"]
