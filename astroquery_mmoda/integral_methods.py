"""The INTEGRAL methods of `~astroquery_mmoda.core.MmodaClass` (a mixin).

`IntegralMethods` turns the astropy arguments of ``query_region``,
``get_images``, ``get_lightcurve`` and ``get_spectrum`` into an MMODA product
request (`astroquery_mmoda.integral`), sends it through the class's
``get_product`` or ``submit`` and shapes the answer
(`astroquery_mmoda.integral_results`).  Each method has an ``_async`` form, as
astroquery modules have, which returns the `~astroquery_mmoda.jobs.Job`
without waiting.
"""
from . import integral, quantities
from .exceptions import InvalidQueryError, JobFailedError

__all__ = ["IntegralMethods"]


class IntegralMethods:
    """The INTEGRAL methods of `~astroquery_mmoda.core.MmodaClass`.

    A mixin: the class using it provides ``get_product`` and ``submit`` (as
    `~astroquery_mmoda.core.MmodaClass` does) and ``_integral_login(need_roles=...)``,
    which returns the token's roles (empty when not needed) and whether there is
    a token.

    The ``_async`` methods take the arguments of their synchronous forms
    (without ``timeout``, ``get_query_payload`` and ``drop_empty``) and return
    the submitted `~astroquery_mmoda.jobs.Job`; ``job.result()`` gives its
    `~astroquery_mmoda.products.ProductSet`.  Once the job is done, the
    synchronous method called with the same arguments returns the shaped result
    from the cache, without a new job.
    """

    def _integral_request(self, instrument, kind, coordinates, *, start_time, end_time, options, params):
        """``(instrument, product, wire, meta, campaign_scws, roles)``; no ``campaign_scws`` for one job."""
        instrument = integral.canonical_instrument(instrument)
        scw_list = options.get("scw_list")
        roles, logged_in = self._integral_login(
            need_roles=options.get("max_pointings") is not None or scw_list is not None)
        campaign_scws = None
        if scw_list is not None:
            from . import campaigns  # not on import: only long ScW lists need it

            if hasattr(scw_list, "colnames"):  # a pointings table
                scw_list = campaigns.normalize_scw_list(scw_list)
            scw_list = quantities.science_windows(scw_list)
            if campaigns.needs_campaign(scw_list, roles):
                campaign_scws, scw_list = scw_list, None
            options = dict(options, scw_list=scw_list)
        product, wire, meta = integral.integral_params(
            instrument, kind, coordinates, start_time=start_time, end_time=end_time, roles=roles,
            logged_in=logged_in, **options)
        integral.add_extra_params(wire, params)
        return instrument, product, wire, meta, campaign_scws, roles

    def _integral_result(self, instrument, kind, coordinates, *, start_time, end_time, query_type,
                         timeout, cache, get_query_payload, options, params, result, split_by="count",
                         drop_empty=False):
        """One job's products as a ``result`` (``'catalog'``, ``'image'``, ``'lightcurve'``,
        ``'spectrum'``), or a campaign's combination of the same."""
        if split_by not in ("count", "revolution"):
            raise InvalidQueryError(f"split_by must be 'count' or 'revolution', not {split_by!r}")
        instrument, product, wire, meta, campaign_scws, roles = self._integral_request(
            instrument, kind, coordinates, start_time=start_time, end_time=end_time, options=options,
            params=params)
        if campaign_scws is not None:
            return self._integral_campaign(instrument, product, wire, meta, campaign_scws, roles,
                                           result=result, query_type=query_type, timeout=timeout,
                                           cache=cache, split_by=split_by, drop_empty=drop_empty,
                                           get_query_payload=get_query_payload)
        products = self.get_product(instrument, product, query_type=query_type, timeout=timeout,
                                    cache=cache, get_query_payload=get_query_payload, **wire)
        if get_query_payload:
            return products
        meta.update(job_id=products.job_id, query_type=query_type, product=product)
        return _shape_one(result, products, meta, drop_empty=drop_empty)

    def _integral_campaign(self, instrument, product, wire, meta, scws, roles, *, result, query_type,
                           timeout, cache, split_by, drop_empty, get_query_payload):
        """A long ScW list as a campaign of jobs (`astroquery_mmoda.campaigns`), combined."""
        from .campaigns import Campaign

        campaign = Campaign(self, instrument, product, wire, scws, kind=result, by=split_by, roles=roles,
                            query_type=query_type, cache=cache)
        if get_query_payload:
            return [self.get_product(instrument, product, query_type=query_type, get_query_payload=True,
                                     **request_params)
                    for _, _, request_params in campaign.requests()]
        done = campaign.run(timeout)
        if done.combined is None:
            reasons = "; ".join(f"{label}: {error}" for label, (_, error) in done.failures.items())
            raise JobFailedError(f"every job of the MMODA campaign failed ({done.summary}): "
                                 f"{reasons[:1500]}")
        meta.update(query_type=query_type, product=product, campaign=done.summary,
                    jobs=[plan.label for plan in done.plans if plan.label not in done.failures])
        shaped = _shape_combined(result, done.combined, meta, drop_empty=drop_empty)
        shaped.campaign = done
        return shaped

    def _integral_job(self, instrument, kind, coordinates, *, start_time, end_time, query_type, cache,
                      options, params):
        instrument, product, wire, _, campaign_scws, _ = self._integral_request(
            instrument, kind, coordinates, start_time=start_time, end_time=end_time, options=options,
            params=params)
        if campaign_scws is not None:
            raise InvalidQueryError(
                f"{len(campaign_scws)} science windows are more than one job takes: the _async methods "
                "submit one job; call the method without _async (it runs them as a campaign), or "
                "use astroquery_mmoda.campaigns.Campaign to submit and follow the jobs yourself")
        return self.submit(instrument, product, query_type=query_type, cache=cache, **wire)

    def query_region(self, coordinates, radius=None, *, start_time, end_time, instrument="isgri",
                     energy_range=None, max_pointings=None, osa_version=None, scw_list=None,
                     detection_threshold=None, split_by="count", query_type="Real", timeout=None,
                     cache=True, get_query_payload=False, **params):
        """The sources detected in an INTEGRAL mosaic image of a sky region.

        Parameters
        ----------
        coordinates : `~astropy.coordinates.SkyCoord` or str
            Centre of the region (any frame; sent as ICRS degrees): a
            SkyCoord, coordinates as text, or an object name such as
            ``'Crab'`` (resolved by CDS Sesame, as astroquery modules do).
        radius : `~astropy.units.Quantity` or float, optional
            Radius within which pointings are selected (an angle; a plain
            number is in degrees).
        start_time, end_time : `~astropy.time.Time` or anything `~astropy.time.Time` takes
            The time interval (sent as UTC).
        instrument : {'isgri', 'jemx'}
        energy_range : `~astropy.units.Quantity`, optional
            Two energies; 30–80 keV for ISGRI, 3–20 keV for JEM-X by default.
        max_pointings : int, optional
            Most science windows to use (above 50 needs the ``unige-hpc-full`` role).
        osa_version : str, optional
            E.g. ``'OSA11.2'``.
        scw_list : list of str or `~astropy.table.Table`, optional
            Explicit science windows (``'NNNNNNNNNNNN.00V'``), or a pointings
            table (see `~astroquery_mmoda.campaigns.find_pointings`).  More
            than one job takes (50, or 500 with the ``unige-hpc-full`` role)
            makes a campaign: one job per slice, run and resumed together,
            their results combined into the one result this method returns;
            its ``campaign`` attribute (a
            `~astroquery_mmoda.campaigns.CampaignResult`) lists failed jobs
            and retries them.  See :doc:`/campaigns`.
        split_by : {'count', 'revolution'}
            How a campaign's science windows are sliced into jobs.
        detection_threshold : float, optional
            Significance (sigma) above which sources are listed.
        query_type : {'Real', 'Dummy'}
        timeout : float or `~astropy.units.Quantity`, optional
            Longest wait for the job.
        cache : bool
            Use the result cache.
        get_query_payload : bool
            Return the parameters that would be sent instead.
        **params
            Other parameters of the product (see `get_parameters`).

        Returns
        -------
        `~astropy.table.Table`
            One row per source: ``src_names``, ``ra``, ``dec`` (deg),
            ``significance``, flags; ``meta`` has the instrument, energy band,
            time range and job id.  Give it (maybe filtered, see
            `~astroquery_mmoda.integral.select_sources`) as ``catalog=`` to
            `get_spectrum` and `get_lightcurve`.

        Examples
        --------
        >>> from astropy.coordinates import SkyCoord
        >>> from astroquery_mmoda import Mmoda
        >>> catalog = Mmoda.query_region(SkyCoord.from_name("4U 1700-377"), 8 * u.deg,
        ...                              start_time="2003-03-15", end_time="2003-03-16",
        ...                              max_pointings=10)  # doctest: +SKIP
        """
        return self._integral_result(
            instrument, "image", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=_image_options(radius, energy_range, max_pointings, osa_version, scw_list,
                                   detection_threshold),
            params=params, result="catalog", split_by=split_by)

    def get_images(self, coordinates, radius=None, *, start_time, end_time, instrument="isgri",
                   energy_range=None, max_pointings=None, osa_version=None, scw_list=None,
                   detection_threshold=None, split_by="count", query_type="Real", timeout=None,
                   cache=True, get_query_payload=False, **params):
        """The INTEGRAL mosaic image of a sky region.

        Takes the same arguments as `query_region`; asking for both with the
        same arguments runs one job (the second answer comes from the cache).

        Returns
        -------
        list of `~astropy.io.fits.HDUList`
            The mosaic: intensity, variance, significance and exposure maps
            with their WCS.

        Examples
        --------
        >>> (mosaic,) = Mmoda.get_images(SkyCoord(258.5, -38.0, unit="deg"), 8 * u.deg,
        ...                              start_time="2003-03-15", end_time="2003-03-16",
        ...                              max_pointings=10)  # doctest: +SKIP
        >>> [hdu.header.get("IMATYPE") for hdu in mosaic[2:]]  # doctest: +SKIP
        ['INTENSITY', 'VARIANCE', 'SIGNIFICANCE', 'EXPOSURE']
        """
        return self._integral_result(
            instrument, "image", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=_image_options(radius, energy_range, max_pointings, osa_version, scw_list,
                                   detection_threshold),
            params=params, result="image", split_by=split_by)

    def get_lightcurve(self, coordinates, *, start_time, end_time, instrument="isgri",
                       time_bin=None, energy_range=None, catalog=None, radius=None,
                       max_pointings=None, osa_version=None, scw_list=None, split_by="count",
                       drop_empty=False, query_type="Real", timeout=None, cache=True,
                       get_query_payload=False, **params):
        """Light curves of the sources of a catalog (ISGRI, JEM-X) or of SPI-ACS.

        Parameters
        ----------
        coordinates : `~astropy.coordinates.SkyCoord` or str
            Where to look (for SPI-ACS: the direction, SPI-ACS sees all sky).
        start_time, end_time : `~astropy.time.Time` or anything `~astropy.time.Time` takes
        instrument : {'isgri', 'jemx', 'spi_acs'}
        time_bin : `~astropy.units.Quantity`, optional
            Bin width (e.g. ``1000 * u.s``; SPI-ACS down to 0.05 s).
        energy_range : `~astropy.units.Quantity`, optional
            ISGRI and JEM-X only.
        catalog : `~astropy.table.Table`, optional
            Sources to extract, as returned (and maybe filtered) by
            `query_region`.
        drop_empty : bool
            Drop bins without exposure or without a valid rate (otherwise they
            are flagged in the ``empty`` column).
        radius, max_pointings, osa_version, scw_list, split_by, query_type, timeout, cache, get_query_payload
            As for `query_region`.

        Returns
        -------
        `~astroquery_mmoda.integral.LightCurveSet`
            A mapping of source name to `~astropy.timeseries.TimeSeries` with
            columns ``time``, ``time_bin``, ``rate``, ``rate_err``,
            ``fracexp`` and ``empty``; the FITS originals in ``.hdulists``.

        Examples
        --------
        >>> curves = Mmoda.get_lightcurve(field, start_time="2003-03-15", end_time="2003-03-16",
        ...                               catalog=chosen, time_bin=1000 * u.s)  # doctest: +SKIP
        >>> curves["4U 1700-377"]["time", "rate", "rate_err"]  # doctest: +SKIP
        >>> acs = Mmoda.get_lightcurve(field, start_time="2003-03-15T23:27:40",
        ...                            end_time="2003-03-15T23:32:40", instrument="spi_acs",
        ...                            time_bin=0.5 * u.s)  # doctest: +SKIP
        """
        options = integral.lightcurve_options(
            instrument, time_bin=time_bin, energy_range=energy_range, radius=radius,
            max_pointings=max_pointings, osa_version=osa_version, scw_list=scw_list,
            catalog=catalog)
        return self._integral_result(
            instrument, "lightcurve", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=options, params=params, result="lightcurve", split_by=split_by, drop_empty=drop_empty)

    def get_spectrum(self, coordinates, *, start_time, end_time, instrument="isgri",
                     energy_range=None, catalog=None, radius=None, max_pointings=None,
                     osa_version=None, scw_list=None, split_by="count", query_type="Real",
                     timeout=None, cache=True, get_query_payload=False, **params):
        """Spectra, with their ARF and RMF, of the sources of a catalog (ISGRI, JEM-X).

        Parameters are those of `get_lightcurve` (no ``time_bin``).

        Returns
        -------
        `~astroquery_mmoda.integral.SpectrumSet`
            A mapping of source name to `~astroquery_mmoda.integral.Spectrum`
            (``spectrum``, ``arf``, ``rmf`` HDULists); ``write(directory)``
            makes XSPEC-ready files.

        Examples
        --------
        >>> spectra = Mmoda.get_spectrum(field, start_time="2003-03-15", end_time="2003-03-16",
        ...                              catalog=chosen)  # doctest: +SKIP
        >>> spectra["OAO 1657-415"].write("spectra")  # doctest: +SKIP
        """
        return self._integral_result(
            instrument, "spectrum", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=dict(energy_range=energy_range, catalog=catalog, radius=radius,
                         max_pointings=max_pointings, osa_version=osa_version, scw_list=scw_list),
            params=params, result="spectrum", split_by=split_by)

    def query_region_async(self, coordinates, radius=None, *, start_time, end_time, instrument="isgri",
                           energy_range=None, max_pointings=None, osa_version=None, scw_list=None,
                           detection_threshold=None, query_type="Real", cache=True, **params):
        """Submit the job of `query_region` and return it without waiting.

        Returns
        -------
        `~astroquery_mmoda.jobs.Job`
        """
        return self._integral_job(
            instrument, "image", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, cache=cache,
            options=_image_options(radius, energy_range, max_pointings, osa_version, scw_list,
                                   detection_threshold),
            params=params)

    def get_images_async(self, coordinates, radius=None, **options):
        """Submit the job of `get_images` without waiting: `query_region_async` under its other name.

        Takes the keyword options of `query_region_async`.

        Returns
        -------
        `~astroquery_mmoda.jobs.Job`
        """
        return self.query_region_async(coordinates, radius, **options)

    def get_lightcurve_async(self, coordinates, *, start_time, end_time, instrument="isgri",
                             time_bin=None, energy_range=None, catalog=None, radius=None,
                             max_pointings=None, osa_version=None, scw_list=None, query_type="Real",
                             cache=True, **params):
        """Submit the job of `get_lightcurve` and return it without waiting.

        Returns
        -------
        `~astroquery_mmoda.jobs.Job`
        """
        options = integral.lightcurve_options(
            instrument, time_bin=time_bin, energy_range=energy_range, radius=radius,
            max_pointings=max_pointings, osa_version=osa_version, scw_list=scw_list,
            catalog=catalog)
        return self._integral_job(instrument, "lightcurve", coordinates, start_time=start_time,
                                  end_time=end_time, query_type=query_type, cache=cache,
                                  options=options, params=params)

    def get_spectrum_async(self, coordinates, *, start_time, end_time, instrument="isgri",
                           energy_range=None, catalog=None, radius=None, max_pointings=None,
                           osa_version=None, scw_list=None, query_type="Real", cache=True, **params):
        """Submit the job of `get_spectrum` and return it without waiting.

        Returns
        -------
        `~astroquery_mmoda.jobs.Job`
        """
        return self._integral_job(
            instrument, "spectrum", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, cache=cache,
            options=dict(energy_range=energy_range, catalog=catalog, radius=radius,
                         max_pointings=max_pointings, osa_version=osa_version, scw_list=scw_list),
            params=params)


def _image_options(radius, energy_range, max_pointings, osa_version, scw_list, detection_threshold):
    return dict(radius=radius, energy_range=energy_range, max_pointings=max_pointings,
                osa_version=osa_version, scw_list=scw_list, detection_threshold=detection_threshold)


def _shape_one(result, products, meta, *, drop_empty):
    """One job's products as the method's result."""
    if result == "catalog":
        return integral.catalog_result(products, meta=meta)
    if result == "image":
        return integral.images_result(products)
    if result == "lightcurve":
        return integral.lightcurve_result(products, meta=meta, drop_empty=drop_empty)
    return integral.group_spectra(products, meta=meta)


def _shape_combined(result, combined, meta, *, drop_empty):
    """A campaign's combination as the method's result (the type of one job's)."""
    if result == "image":
        return _CampaignList([combined])
    combined.meta.update({key: value for key, value in meta.items()
                          if result != "catalog" or key != "jobs"})
    if result == "lightcurve" and drop_empty:
        return integral.LightCurveSet({name: series[~series["empty"]] for name, series in combined.items()},
                                      hdulists=combined.hdulists, meta=combined.meta)
    return combined


class _CampaignList(list):
    """The mosaics of a campaign (one), with its ``campaign`` attribute."""
