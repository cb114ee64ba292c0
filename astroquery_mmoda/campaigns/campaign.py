"""A campaign: a long ScW list run as many MMODA jobs, their products combined.

`Campaign` splits the ScW list (`~astroquery_mmoda.campaigns.plan`), submits
one request per job through ``client.submit_many`` (so the result cache and
the job journal apply: the same campaign run again, even in a new session,
finds its finished and running jobs instead of submitting them again), polls
them as one `~astroquery_mmoda.jobs.JobGroup` and folds each job's products
into the combination as soon as the job is done.
"""
import threading

from astroquery import log

from ..exceptions import InvalidQueryError
from ..integral import LightCurveSet, group_spectra, lightcurve_to_timeseries
from ..jobs import JobGroup
from .combine_lightcurves import LightCurveSetCombiner
from .combine_mosaics import MosaicCombiner
from .combine_spectra import SpectrumSetCombiner
from .plan import max_scw_per_job, normalize_scw_list, split_scw_list

__all__ = ["Campaign", "CampaignResult", "KINDS", "needs_campaign", "run_campaign"]


def _lightcurves(products):
    series, hdulists = {}, {}
    for name in products:
        if products.kind[name] != "fits":
            continue
        hdul = products[name]
        curve = lightcurve_to_timeseries(hdul)
        source = str(products.meta[name].get("src_name") or curve.meta.get("src_name") or name).strip()
        curve.meta["src_name"] = source
        series[source], hdulists[source] = curve, hdul
    return LightCurveSet(series, hdulists=hdulists)


def _spectra(products):
    return group_spectra(products, meta={})


class _MosaicFolder:
    """Adapts `MosaicCombiner` to a job's products (its first FITS mosaic)."""

    def __init__(self, **options):
        self._combiner = MosaicCombiner(**options)

    def add(self, products, *, job):
        mosaics = [products[name] for name in products if products.kind[name] == "fits"]
        if not mosaics:
            raise InvalidQueryError(f"job {job} returned no mosaic image")
        self._combiner.add(mosaics[0], job=job)

    def result(self):
        return self._combiner.result()


#: What each kind of campaign folds: (shape a job's products, make the combiner).
KINDS = {"lightcurve": (_lightcurves, LightCurveSetCombiner),
         "spectrum": (_spectra, SpectrumSetCombiner),
         "image": (lambda products: products, _MosaicFolder)}


class CampaignResult:
    """What a campaign combined, and what it could not.

    Attributes
    ----------
    combined
        A `~astroquery_mmoda.integral.LightCurveSet` (light curves), a
        `~astroquery_mmoda.integral.SpectrumSet` (spectra) or an
        `~astropy.io.fits.HDUList` (mosaic); None when no job succeeded.
    failures : dict
        ``{job label: (JobPlan, exception)}`` of the jobs that failed.
    plans : list of `~astroquery_mmoda.campaigns.plan.JobPlan`
    summary : str
        The last progress line.
    """

    def __init__(self, campaign, combined, failures, summary):
        self._campaign = campaign
        self.combined = combined
        self.failures = dict(failures)
        self.plans = list(campaign.plans)
        self.summary = summary

    def __repr__(self):
        return f"<CampaignResult {self._campaign.kind}: {self.summary}>"

    @property
    def complete(self):
        """Whether every job contributed."""
        return not self.failures

    @property
    def failed_scw(self):
        """The ScW of the failed jobs (sorted)."""
        return sorted(scw for plan, _ in self.failures.values() for scw in plan.scw_list)

    def retry(self, timeout=None):
        """Submit the failed jobs again and fold what they return.

        Returns
        -------
        CampaignResult
            The new combination (the campaign's, all jobs so far).
        """
        return self._campaign.retry(timeout=timeout)


class _CampaignGroup(JobGroup):
    """A JobGroup that hands each finished job to its campaign at once."""

    def __init__(self, jobs, campaign):
        super().__init__(jobs)
        self._campaign = campaign

    def summary(self):
        return self._campaign.progress()

    def _poll(self, index):
        super()._poll(index)
        if self.jobs[index].finished or index in self.errors:
            self._campaign._collect(self, index)

    def results(self):
        """Not available: each job's products are folded into the campaign's result."""
        raise InvalidQueryError("a campaign's jobs hand their products to the combination: use "
                                "campaign.result() (its failures list the jobs that failed)")

    @property
    def failures(self):
        """``{index: exception}`` of the jobs that failed."""
        labels = [plan.label for plan in self._campaign._group_plans]
        return {index: self._campaign._failures[label][1] for index, label in enumerate(labels)
                if label in self._campaign._failures}


class Campaign:
    """An INTEGRAL product over a long ScW list: many jobs, one combined result.

    Parameters
    ----------
    client : `~astroquery_mmoda.core.MmodaClass`
        Anything with ``submit_many(requests, query_type=..., cache=...)``.
    instrument, product : str
        E.g. ``'isgri'``, ``'isgri_lc'``.
    params : dict
        The product's parameters for every job (without ``scw_list``).
    scw_list : list of str or `~astropy.table.Table`
        The science windows (a pointings table has an ``scw_id`` column).
    kind : {'lightcurve', 'spectrum', 'image'}
        How the jobs' products are combined.
    by : {'count', 'revolution'}
        How the ScW are split (see `~astroquery_mmoda.campaigns.plan.split_scw_list`).
    max_per_job : int, optional
        Most ScW per job (default: the token's limit, 50 or 500).
    roles : sequence of str, optional
        The token's roles, for the default ``max_per_job``.
    query_type : {'Real', 'Dummy'}
    cache : bool
        Use the result cache (what makes a finished job free to fetch again).
    max_concurrent : int, optional
        Most requests in flight at once (default ``conf.max_concurrent``).
    combine_options : dict, optional
        Passed to the combiner (e.g. ``wcs`` and ``shape`` for mosaics).

    Examples
    --------
    >>> from astroquery_mmoda import Mmoda
    >>> campaign = Campaign(Mmoda, "isgri", "isgri_lc", params, scw_list=pointings,
    ...                     kind="lightcurve", by="revolution")  # doctest: +SKIP
    >>> result = campaign.run(timeout=86400)  # doctest: +SKIP
    >>> result.summary, list(result.failures)  # doctest: +SKIP
    ('ScW 1000/1000, jobs 20/20 done, 0 failed', [])
    """

    def __init__(self, client, instrument, product, params, scw_list, *, kind, by="count",
                 max_per_job=None, roles=(), query_type="Real", cache=True, max_concurrent=None,
                 combine_options=None):
        if kind not in KINDS:
            raise InvalidQueryError(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        if "scw_list" in params:
            raise InvalidQueryError("give the science windows as scw_list=, not in params")
        self.client = client
        self.instrument, self.product, self.kind = instrument, product, kind
        self.params = dict(params)
        self.query_type, self.cache = query_type, cache
        if max_concurrent is not None and (isinstance(max_concurrent, bool)
                                           or not isinstance(max_concurrent, int) or max_concurrent < 1):
            raise InvalidQueryError(f"max_concurrent must be a positive integer, not {max_concurrent!r}")
        self.max_concurrent = max_concurrent
        limit = max_per_job if max_per_job is not None else max_scw_per_job(roles)
        self.plans = split_scw_list(scw_list, max_per_job=limit, by=by)
        self._shape, make = KINDS[kind]
        self._combiner = make(**(combine_options or {}))
        self._lock = threading.Lock()
        self._status = {}        # label -> 'done' | 'failed'
        self._failures = {}      # label -> (plan, exception)
        self.group = None

    def __repr__(self):
        return f"<Campaign {self.instrument}/{self.product}: {self.progress()}>"

    @property
    def n_scw(self):
        """How many ScW the campaign covers."""
        return sum(len(plan) for plan in self.plans)

    def requests(self, plans=None):
        """The ``(instrument, product, params)`` request of each job, in plan order."""
        return [(self.instrument, self.product, dict(self.params, scw_list=list(plan.scw_list)))
                for plan in (self.plans if plans is None else plans)]

    def progress(self):
        """One progress line, e.g. ``'ScW 340/1000, jobs 7/20 done, 1 failed'``."""
        by_label = {plan.label: plan for plan in self.plans}
        done = [label for label, status in self._status.items() if status == "done"]
        failed = sum(status == "failed" for status in self._status.values())
        scw = sum(len(by_label[label]) for label in done)
        return (f"ScW {scw}/{self.n_scw}, jobs {len(done)}/{len(self.plans)} done, "
                f"{failed} failed")

    def submit(self, plans=None):
        """Submit (or resume) the jobs; returns the `~astroquery_mmoda.jobs.JobGroup`."""
        plans = self.plans if plans is None else plans
        group = self.client.submit_many(self.requests(plans), query_type=self.query_type,
                                        cache=self.cache)
        self.group = _CampaignGroup(group.jobs, self)
        self._group_plans = list(plans)
        return self.group

    def _collect(self, group, index):
        plan = self._group_plans[index]
        with self._lock:
            if plan.label in self._status:  # folded (or failed) already
                return
            job = group.jobs[index]
            try:
                if index in group.errors:
                    raise group.errors[index]
                shaped = self._shape(job.result())
                self._combiner.add(shaped, job=plan.label)
            except KeyboardInterrupt:
                raise
            except Exception as exc:  # kept as the job's failure, never a silent gap
                self._status[plan.label] = "failed"
                self._failures[plan.label] = (plan, exc)
                log.warning(f"MMODA campaign: job {plan.label} ({len(plan)} ScW) failed: {exc}")
                return
            self._status[plan.label] = "done"
            self._failures.pop(plan.label, None)
            _release(job)

    def wait(self, timeout=None, *, show_progress=None):
        """Poll the jobs until all are finished, folding each as it is done.

        ``KeyboardInterrupt`` leaves the jobs running: the same campaign, made
        again later, resumes them.
        """
        from .. import conf

        if self.group is None:
            self.submit()
        self._collect_finished()  # answers from the result cache are never polled
        with conf.set_temp("max_concurrent", self.max_concurrent or conf.max_concurrent):
            self.group.wait(timeout=timeout, show_progress=show_progress)
        self._collect_finished()
        return self

    def _collect_finished(self):
        for index, job in enumerate(self.group.jobs):
            if job.finished or index in self.group.errors:
                self._collect(self.group, index)

    def result(self):
        """The combination of the jobs done so far, with the failures listed.

        Returns
        -------
        CampaignResult
        """
        done = any(status == "done" for status in self._status.values())
        combined = self._combiner.result(**self._result_options()) if done else None
        if self._failures:
            labels = ", ".join(sorted(self._failures))
            log.warning(f"MMODA campaign: {len(self._failures)} of {len(self.plans)} jobs failed "
                        f"({labels}); see result.failures, or result.retry()")
        return CampaignResult(self, combined, self._failures, self.progress())

    def _result_options(self):
        if self.kind == "image":
            return {}
        return {"meta": {"instrument": self.instrument, "product": self.product,
                         "jobs": [plan.label for plan in self.plans
                                  if self._status.get(plan.label) == "done"]}}

    def run(self, timeout=None, *, show_progress=None):
        """Submit, wait and combine: `submit`, `wait` then `result`."""
        self.submit()
        return self.wait(timeout, show_progress=show_progress).result()

    def retry(self, timeout=None):
        """Submit the failed jobs again, wait for them and combine."""
        plans = [plan for plan in self.plans if plan.label in self._failures]
        if not plans:
            return self.result()
        for plan in plans:
            self._status.pop(plan.label, None)
        self.submit(plans)
        return self.wait(timeout).result()


def run_campaign(client, instrument, product, params, scw_list, *, kind, timeout=None,
                 show_progress=None, **options):
    """Run a campaign in one call: what ``Mmoda.get_lightcurve`` and co. delegate to.

    Parameters
    ----------
    client, instrument, product, params, scw_list, kind
        See `Campaign`.
    timeout : float or `~astropy.units.Quantity`, optional
        Longest wait for all the jobs (default ``conf.job_timeout``).
    show_progress : bool, optional
        Show a progress bar (default: when the session is interactive).
    **options
        ``by``, ``max_per_job``, ``roles``, ``query_type``, ``cache``,
        ``max_concurrent``, ``combine_options`` (see `Campaign`).

    Returns
    -------
    CampaignResult
    """
    campaign = Campaign(client, instrument, product, params, scw_list, kind=kind, **options)
    return campaign.run(timeout, show_progress=show_progress)


def needs_campaign(scw_list, roles=()):
    """Whether a ``scw_list`` is more than one job can take (or a pointings table).

    Examples
    --------
    >>> long_list = [f"0665{i:04d}0010.001" for i in range(60)]
    >>> needs_campaign(long_list[:50]), needs_campaign(long_list)
    (False, True)
    >>> needs_campaign(long_list, roles=["unige-hpc-full"])
    False
    """
    if scw_list is None:
        return False
    if hasattr(scw_list, "colnames"):
        return True
    return len(normalize_scw_list(scw_list)) > max_scw_per_job(roles)


def _release(job):
    # The products are folded: let the job forget them, so a campaign holds
    # its combination only, not every job's products as well.
    for name in ("_result", "_envelope"):
        if hasattr(job, name):
            setattr(job, name, None)
