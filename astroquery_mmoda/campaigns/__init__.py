"""INTEGRAL campaigns: long ScW lists split into jobs, their products combined.

Building blocks, lowest first: `~astroquery_mmoda.campaigns.pointings` (which
ScW), `~astroquery_mmoda.campaigns.plan` (which jobs),
``combine_lightcurves``, ``combine_spectra``, ``combine_mosaics`` (one result
from many jobs) and `~astroquery_mmoda.campaigns.campaign` (submit, follow,
resume, combine).
"""
from .plan import JobPlan, max_scw_per_job, normalize_scw_list, revolution, split_scw_list

__all__ = ["JobPlan", "max_scw_per_job", "normalize_scw_list", "revolution", "split_scw_list"]
