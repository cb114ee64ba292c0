"""INTEGRAL campaigns: long ScW lists split into jobs, their products combined.

Building blocks, lowest first: `~astroquery_mmoda.campaigns.pointings` (which
ScW), `~astroquery_mmoda.campaigns.plan` (which jobs),
`~astroquery_mmoda.campaigns.combine_lightcurves`,
`~astroquery_mmoda.campaigns.combine_spectra`,
`~astroquery_mmoda.campaigns.combine_mosaics` (one result from many jobs) and
`~astroquery_mmoda.campaigns.campaign` (submit, follow, resume, combine).
"""
from .campaign import Campaign, CampaignResult, needs_campaign, run_campaign
from .combine_lightcurves import LightCurveCombiner, LightCurveSetCombiner, combine_lightcurves
from .combine_mosaics import MosaicCombiner, combine_mosaics
from .combine_spectra import SpectrumCombiner, SpectrumSetCombiner, combine_spectra
from .plan import JobPlan, max_scw_per_job, normalize_scw_list, revolution, split_scw_list
from .pointings import find_pointings, pointings_from_scw_list

__all__ = ["Campaign", "CampaignResult", "JobPlan", "LightCurveCombiner", "LightCurveSetCombiner",
           "MosaicCombiner", "SpectrumCombiner", "SpectrumSetCombiner", "combine_lightcurves",
           "combine_mosaics", "combine_spectra", "find_pointings", "max_scw_per_job", "needs_campaign",
           "normalize_scw_list", "pointings_from_scw_list", "revolution", "run_campaign",
           "split_scw_list"]
