"""The astroquery face of MMODA: `MmodaClass` and its instance `Mmoda`."""
import textwrap
import threading

from astroquery import log
from astroquery.query import QueryWithLogin

from . import conf, integral
from . import params as _params
from .dispatcher import DispatcherClient, encode_params, parse_meta_data
from .exceptions import InvalidQueryError
from .jobs import Job, _seconds
from .version import version

__all__ = ["Mmoda", "MmodaClass"]


class _TokenLogin(QueryWithLogin):
    # astroquery generates a public login() for the class that defines _login;
    # keeping _login here lets MmodaClass.login return the TokenInfo.
    def _login(self, token=None, *, store_token=False, reenter_token=False):
        self._tokens.login(token, store_token=store_token, reenter_token=reenter_token)
        return True


class MmodaClass(_TokenLogin):
    """Queries to MMODA, the Multi-Messenger Online Data Analysis platform.

    Use the ready-made instance ``Mmoda``, or make one for another dispatcher
    with ``MmodaClass(server=...)``.

    Parameters
    ----------
    server : str, optional
        Root URL of the dispatcher; `astroquery_mmoda.conf.server` (read at each
        request) when not given.
    prompt : bool
        Let `login` ask for a token when none is found (only ever in an
        interactive session).  Scripts and services may set it to False.

    Examples
    --------
    >>> from astroquery_mmoda import Mmoda
    >>> Mmoda.server  # doctest: +SKIP
    'https://www.astro.unige.ch/mmoda/dispatch-data'
    """

    def __init__(self, *, server=None, prompt=True):
        super().__init__()
        from .auth import TokenManager

        self._server = None
        if server is not None:
            self.server = server
        self._session.headers["User-Agent"] = (
            f"{self._session.headers.get('User-Agent', '')} astroquery_mmoda/{version}".strip())
        self._tokens = TokenManager(server_url=self._server_url,
                                    interactive=None if prompt else _never)
        self._dispatcher = DispatcherClient(self, self._server_url)
        self._meta_cache = {}
        self._meta_lock = threading.Lock()

    def __repr__(self):
        state = "logged in" if self._tokens.token else "not logged in"
        return f"<MmodaClass {self.server} ({state})>"

    def _server_url(self):
        return self.server

    @property
    def server(self):
        """Root URL of the dispatcher in use."""
        return (self._server or conf.server).rstrip("/")

    @server.setter
    def server(self, url):
        if url is None:
            self._server = None
            return
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidQueryError(f"the server must be an http(s) URL, not {url!r}")
        self._server = url.rstrip("/")

    def _response_hook(self, response, *args, **kwargs):
        # astroquery's hook logs whole URLs, headers and bodies: tokens included,
        # and it formats the (possibly huge) body even when DEBUG is off.
        if log.isEnabledFor(10):
            from .auth import redact

            request = response.request
            log.debug(f"HTTP {request.method} {redact(request.url)} -> {response.status_code} "
                      f"({response.headers.get('Content-Length', 'unknown')} bytes)")

    # -- tokens -------------------------------------------------------------------

    def login(self, token=None, *, store_token=False, reenter_token=False):
        """Log in to MMODA with a personal API token.

        Without ``token`` it is looked for, in order, in the ``ODA_TOKEN``
        environment variable, the OS keyring, ``./.oda-token``, ``~/.oda-token``,
        and finally asked for (only in an interactive session).  Get a token
        from the MMODA web site (log in, then "API token"); it lives 24 hours.

        Parameters
        ----------
        token : str, optional
            The token itself.
        store_token : bool
            Save the token in the OS keyring for the next sessions.
        reenter_token : bool
            Ignore stored tokens and ask for a new one.

        Returns
        -------
        `~astroquery_mmoda.auth.TokenInfo`
            Who the token belongs to, its roles and expiry.

        Raises
        ------
        astroquery.exceptions.LoginError
            When no valid token is found, or the token is expired or malformed.
        """
        super().login(token, store_token=store_token, reenter_token=reenter_token)
        return self._tokens.info()

    def logout(self, *, forget=False):
        """Forget the token for this session (``forget=True``: also remove it from the keyring)."""
        self._tokens.logout(forget=forget)
        self._authenticated = False

    def token_info(self):
        """The logged-in token's owner, roles and expiry.

        Returns
        -------
        `~astroquery_mmoda.auth.TokenInfo`
        """
        return self._tokens.info()

    def refresh_token(self, *, store=False):
        """Get a token with a later expiry from the dispatcher.

        Needs the ``refresh-tokens`` role (dispatchers before 1.3.6 cannot
        refresh tokens at all).

        Parameters
        ----------
        store : bool
            Write the new token back where the old one came from (keyring or
            file).

        Returns
        -------
        `~astroquery_mmoda.auth.TokenInfo`
        """
        return self._tokens.refresh(self._dispatcher.refresh_token, store=store)

    def _token(self):
        return self._tokens.token

    # -- what the dispatcher offers ------------------------------------------------

    def list_instruments(self):
        """Names of the instruments the dispatcher offers (to the logged-in token's roles).

        Returns
        -------
        list of str
        """
        return sorted(self._dispatcher.instruments(token=self._token()))

    def _meta(self, instrument):
        _params.check_name("instrument", instrument)
        key = (self.server, instrument)
        with self._meta_lock:
            if key not in self._meta_cache:
                from .cache import DescriptionCache

                stored = DescriptionCache(self.cache_location)
                raw = stored.get(self.server, instrument, user=self._user())
                if raw is None:
                    raw = self._dispatcher.meta_data(instrument, token=self._token())
                    self._meta_cache[key] = parse_meta_data(raw)
                    stored.put(self.server, instrument, raw, user=self._user())
                else:
                    self._meta_cache[key] = parse_meta_data(raw)
            return self._meta_cache[key]

    def list_products(self, instrument):
        """Names of the products of an instrument.

        Parameters
        ----------
        instrument : str
            E.g. ``"isgri"``, ``"jemx"``, ``"spi_acs"``.

        Returns
        -------
        list of str
        """
        products, _ = self._meta(instrument)
        return sorted(products)

    def _product_parameters(self, instrument, product):
        return _params.product_parameters(instrument, product, self._meta(instrument))

    def get_parameters(self, instrument, product):
        """The parameters of a product, with defaults, units and restrictions.

        Parameters
        ----------
        instrument, product : str

        Returns
        -------
        `~astropy.table.Table`
            Columns ``name``, ``default``, ``unit``, ``query``,
            ``allowed_values``, ``min``, ``max``, ``optional``.
        """
        return _params.parameters_table(self._product_parameters(instrument, product),
                                        instrument=instrument, product=product,
                                        server=self.server)

    # -- parameters -----------------------------------------------------------------

    def _prepare(self, instrument, product, query_type, params, *, validate):
        _params.check_request(instrument, product, query_type, params)
        if validate:
            return _params.check_params(instrument, product, params,
                                        self._product_parameters(instrument, product))
        # Without validation no request is made; units are known only if cached.
        return _params.convert_unchecked(params, self._meta_cache.get((self.server, instrument)))

    # -- products and jobs --------------------------------------------------------------

    @property
    def _results(self):
        from .cache import ResultCache
        return ResultCache(self.cache_location)

    @property
    def _journal(self):
        from .cache import JobJournal
        return JobJournal(self.cache_location)

    def _user(self):
        # The cache keys on the identity (sub, else email) and the roles of the token.
        return self._tokens.info() if self._tokens.token else None

    def _key(self, instrument, product, query_type, params):
        from .cache import cache_key
        return cache_key(url=self.server, instrument=instrument, product=product,
                         query_type=query_type, params=params, user=self._user())

    def _finisher(self, key):
        def finished(job, envelope):
            self._journal.remove(key)
        return finished

    def _storer(self, key):
        # Only answers that decoded are stored: a broken one is never replayed.
        def store(job, envelope):
            if envelope.succeeded:
                self._results.put(key, envelope.data)
        return store

    def _from_cache(self, key, instrument, product, query_type, wire, stored):
        job = Job.from_answer(self, instrument, product, query_type, wire, stored)
        job._on_undecodable = lambda job: self._results.remove(key)
        return job

    def submit(self, instrument, product, *, query_type="Real", validate=True, cache=True,
               get_query_payload=False, **params):
        """Submit a product request without waiting for it.

        A finished result of the same request is taken from the cache (no
        request at all); an unfinished job of the same request, submitted
        earlier (even by another process), is resumed rather than submitted
        again.

        Parameters
        ----------
        instrument, product : str
            See `list_instruments` and `list_products`.
        query_type : {'Real', 'Dummy'}
            ``Dummy`` asks for canned test products.
        validate : bool
            Check the parameter names and values against the dispatcher's
            description first (one request per instrument and session).
        cache : bool
            Use the result cache (see `clear_cache`); astroquery's
            ``cache_conf.cache_active`` switches it off globally.
        get_query_payload : bool
            Return the parameters that would be sent (without the token and the
            per-job session id) instead of sending them.
        **params
            The product's parameters; `~astropy.time.Time`,
            `~astropy.units.Quantity` and catalog `~astropy.table.Table` values
            are converted.

        Returns
        -------
        `~astroquery_mmoda.jobs.Job`
        """
        converted = self._prepare(instrument, product, query_type, params,
                                  validate=validate and not get_query_payload)
        wire = encode_params(converted)
        if get_query_payload:
            return _params.payload(instrument, product, query_type, wire)
        key = self._key(instrument, product, query_type, converted)
        if cache:
            stored = self._results.get(key)
            if stored is not None:
                log.debug(f"MMODA {instrument}/{product}: result from the cache")
                return self._from_cache(key, instrument, product, query_type, wire, stored)
        job = self._new_job(key, instrument, product, query_type, wire, cache=cache)
        try:
            job.update()
        except InvalidQueryError as exc:
            if job.status == "new":
                raise
            # The dispatcher no longer knows the journaled job (e.g. its scratch
            # data were cleaned): forget it and submit the request again.
            log.warning(f"MMODA job {job.job_id} cannot be resumed ({exc}); submitting again")
            self._journal.remove(key)
            job = self._new_job(key, instrument, product, query_type, wire, cache=cache)
            job.update()
        return job

    def _new_job(self, key, instrument, product, query_type, wire, *, cache):
        """A job for this request: the journaled one if it is unfinished, else a new one."""
        job = Job(self, instrument, product, query_type, wire, token=self._token(),
                  on_finish=self._finisher(key))
        if cache:
            job._on_decoded = self._storer(key)
        entry = self._journal.lookup(key)
        # The key includes the server, so the entry is this server's job.
        if entry and entry.get("job_id") and entry.get("session_id"):
            job.job_id, job.session_id = entry["job_id"], entry["session_id"]
            job.status = entry.get("status") or "submitted"
            log.info(f"MMODA job {job.job_id} ({instrument}/{product}) was submitted before: "
                     "resuming it")

        def record(job):
            if not job.finished:
                if job._token:
                    self._tokens.expiry_warning()  # the job will take a while
                self._journal.record(key, url=self.server, instrument=instrument, product=product,
                                     job_id=job.job_id, session_id=job.session_id,
                                     status=job.status, params=dict(wire, query_type=query_type))
        job._on_submit = record
        return job

    def get_product(self, instrument, product, *, query_type="Real", timeout=None, validate=True,
                    cache=True, get_query_payload=False, **params):
        """Get the products of any MMODA instrument.

        Submits the request (see `submit` for the parameters), waits for the
        job (polling with back-off) and decodes the products.

        Parameters
        ----------
        timeout : float or `~astropy.units.Quantity`, optional
            Longest wait in seconds (default ``conf.job_timeout``).

        Returns
        -------
        `~astroquery_mmoda.products.ProductSet`

        Raises
        ------
        astroquery.exceptions.InvalidQueryError
            Bad parameters (before any request when they can be checked).
        astroquery_mmoda.exceptions.JobFailedError
            The job failed; the message is the dispatcher's.
        astroquery_mmoda.exceptions.TimeoutError
            The job is not finished in time (it can be resumed).

        Examples
        --------
        >>> from astroquery_mmoda import Mmoda
        >>> products = Mmoda.get_product("spi_acs", "spi_acs_lc", RA=83.63, DEC=22.01,
        ...                              T1="2003-03-15T23:27:40", T2="2003-03-15T23:32:40",
        ...                              time_bin=2)  # doctest: +SKIP
        """
        if timeout is not None:
            timeout = _seconds(timeout, "timeout")  # checked before anything is sent
        job = self.submit(instrument, product, query_type=query_type, validate=validate,
                          cache=cache, get_query_payload=get_query_payload, **params)
        if get_query_payload:
            return job
        return job.result(timeout)

    def submit_many(self, requests, *, query_type="Real", validate=True, cache=True):
        """Submit many product requests at once.

        Parameters
        ----------
        requests : list
            Each item is ``(instrument, product, params)`` or a dict with the
            keys ``instrument``, ``product`` and the parameters (and optionally
            ``query_type``).

        Returns
        -------
        `~astroquery_mmoda.jobs.JobGroup`
            Call its ``wait()``, then ``results()``.
        """
        from .jobs import JobGroup

        calls = []
        for item in requests:
            instrument, product, kind, params = _params.split_request(item, query_type)
            converted = self._prepare(instrument, product, kind, params, validate=validate)
            calls.append((instrument, product, kind, converted))
        jobs = []
        for instrument, product, kind, converted in calls:
            wire = encode_params(converted)
            key = self._key(instrument, product, kind, converted)
            stored = self._results.get(key) if cache else None
            if stored is not None:
                jobs.append(self._from_cache(key, instrument, product, kind, wire, stored))
                continue
            jobs.append(self._new_job(key, instrument, product, kind, wire, cache=cache))
        return JobGroup(jobs)

    def get_job(self, job_id, session_id=None, *, instrument=None, product=None,
                query_type="Real", **params):
        """Resume a job submitted earlier (here or in another session).

        Jobs submitted by this package are journaled, so ``job_id`` is enough.
        For other jobs, give the same instrument, product and parameters: the
        dispatcher checks a poll against them and the job's owner (log in with
        the same account).

        Returns
        -------
        `~astroquery_mmoda.jobs.Job`
            Its status refreshed with one poll.
        """
        if not isinstance(job_id, str) or not job_id:
            raise InvalidQueryError("job_id must be the string the job was given")
        entry = self._journal.find(job_id, session_id)
        if entry is not None and instrument is None:
            instrument, product = entry["instrument"], entry["product"]
            wire = dict(entry.get("params") or {})
            query_type = wire.pop("query_type", query_type)
            session_id = session_id or entry["session_id"]
            status = entry.get("status") or "submitted"
            key = entry.get("key")
        else:
            if instrument is None or product is None or session_id is None:
                raise InvalidQueryError(
                    f"job {job_id} is not in this computer's journal: give its session_id, "
                    "instrument, product and parameters")
            converted = self._prepare(instrument, product, query_type, params, validate=False)
            wire = encode_params(converted)
            key = self._key(instrument, product, query_type, converted)
            status = "submitted"
        job = Job(self, instrument, product, query_type, wire, token=self._token(),
                  session_id=session_id, job_id=job_id, status=status,
                  on_finish=self._finisher(key) if key else None)
        if key:
            job._on_decoded = self._storer(key)
        job.update()
        return job

    def list_jobs(self):
        """The unfinished jobs journaled on this computer.

        Returns
        -------
        `~astropy.table.Table`
            Columns job_id, session_id, instrument, product, status, submitted,
            updated, url.
        """
        return self._journal.as_table()

    def clear_cache(self, *, jobs=False):
        """Delete the cached results and instrument descriptions.

        ``jobs=True`` also forgets the unfinished jobs.
        """
        import shutil

        from .cache import DescriptionCache

        removed = self._results.clear()
        shutil.rmtree(DescriptionCache(self.cache_location).directory, ignore_errors=True)
        self._meta_cache.clear()
        if jobs:
            self._journal.clear()
        log.debug(f"MMODA cache: {removed} results removed")

    # -- INTEGRAL ----------------------------------------------------------------------

    def _integral_products(self, instrument, kind, coordinates, *, start_time, end_time,
                           query_type, timeout, cache, get_query_payload, options, params):
        # The token's roles are read only when they matter (max_pointings given).
        roles = (self._tokens.info().roles if self._tokens.token and options.get("max_pointings")
                 is not None else ())
        product, wire, meta = integral.integral_params(
            instrument, kind, coordinates, start_time=start_time, end_time=end_time, roles=roles,
            logged_in=bool(self._tokens.token), **options)
        integral.add_extra_params(wire, params)
        result = self.get_product(instrument, product, query_type=query_type, timeout=timeout,
                                  cache=cache, get_query_payload=get_query_payload, **wire)
        if not get_query_payload:
            meta.update(job_id=result.job_id, query_type=query_type, product=product)
        return result, meta

    def query_region(self, coordinates, radius=None, *, start_time, end_time, instrument="isgri",
                     energy_range=None, max_pointings=None, osa_version=None, scw_list=None,
                     detection_threshold=None, query_type="Real", timeout=None, cache=True,
                     get_query_payload=False, **params):
        """The sources detected in an INTEGRAL mosaic image of a sky region.

        Parameters
        ----------
        coordinates : `~astropy.coordinates.SkyCoord` or str
            Centre of the region (any frame; sent as ICRS degrees).
        radius : `~astropy.units.Quantity`, optional
            Radius within which pointings are selected (an angle).
        start_time, end_time : `~astropy.time.Time` or anything `~astropy.time.Time` takes
            The time interval (sent as UTC).
        instrument : {'isgri', 'jemx'}
        energy_range : `~astropy.units.Quantity`, optional
            Two energies; 30–80 keV for ISGRI, 3–20 keV for JEM-X by default.
        max_pointings : int, optional
            Most science windows to use (above 50 needs the ``unige-hpc-full`` role).
        osa_version : str, optional
            E.g. ``'OSA11.2'``.
        scw_list : list of str, optional
            Explicit science windows (``'NNNNNNNNNNNN.00V'``).
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
        products, meta = self._integral_products(
            instrument, "image", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=dict(radius=radius, energy_range=energy_range, max_pointings=max_pointings,
                         osa_version=osa_version, scw_list=scw_list,
                         detection_threshold=detection_threshold),
            params=params)
        if get_query_payload:
            return products
        return integral.catalog_result(products, meta=meta)

    def get_images(self, coordinates, radius=None, *, start_time, end_time, instrument="isgri",
                   energy_range=None, max_pointings=None, osa_version=None, scw_list=None,
                   detection_threshold=None, query_type="Real", timeout=None, cache=True,
                   get_query_payload=False, **params):
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
        products, meta = self._integral_products(
            instrument, "image", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=dict(radius=radius, energy_range=energy_range, max_pointings=max_pointings,
                         osa_version=osa_version, scw_list=scw_list,
                         detection_threshold=detection_threshold),
            params=params)
        if get_query_payload:
            return products
        return integral.images_result(products)

    def get_lightcurve(self, coordinates, *, start_time, end_time, instrument="isgri",
                       time_bin=None, energy_range=None, catalog=None, radius=None,
                       max_pointings=None, osa_version=None, scw_list=None, drop_empty=False,
                       query_type="Real", timeout=None, cache=True, get_query_payload=False,
                       **params):
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
        radius, max_pointings, osa_version, scw_list, query_type, timeout, cache, get_query_payload
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
        products, meta = self._integral_products(
            instrument, "lightcurve", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=options, params=params)
        if get_query_payload:
            return products
        return integral.lightcurve_result(products, meta=meta, drop_empty=drop_empty)

    def get_spectrum(self, coordinates, *, start_time, end_time, instrument="isgri",
                     energy_range=None, catalog=None, radius=None, max_pointings=None,
                     osa_version=None, scw_list=None, query_type="Real", timeout=None, cache=True,
                     get_query_payload=False, **params):
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
        products, meta = self._integral_products(
            instrument, "spectrum", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=dict(energy_range=energy_range, catalog=catalog, radius=radius,
                         max_pointings=max_pointings, osa_version=osa_version, scw_list=scw_list),
            params=params)
        if get_query_payload:
            return products
        return integral.group_spectra(products, meta=meta)


def _never():
    return False


Mmoda = MmodaClass()
Mmoda.__doc__ = textwrap.dedent("""\
    The ready-made `MmodaClass` instance for the public MMODA dispatcher.""")
