"""The astroquery face of MMODA: `MmodaClass` and its instance `Mmoda`."""
import difflib
import textwrap
import threading

from astropy import units as u
from astroquery import log
from astroquery.query import QueryWithLogin

from . import conf
from .dispatcher import DispatcherClient, encode_params, parse_meta_data
from .exceptions import InvalidQueryError
from .jobs import Job, _seconds
from .version import version

__all__ = ["Mmoda", "MmodaClass"]

# Arguments the dispatcher understands besides each product's declared parameters.
_CONTROL_ARGS = frozenset({
    "catalog_selected_objects", "allow_unknown_args", "return_progress", "dry_run",
    "run_asynch", "T_format", "time_bin_format", "use_scws", "user_catalog_file",
})
# Keys that the client sets itself: a user passing them is a mistake.
_RESERVED_ARGS = frozenset({
    "instrument", "product_type", "query_status", "session_id", "job_id", "api", "token",
    "off_line", "oda_api_version", "async_dispatcher",
})
# Units of the dispatcher's parameter descriptions that astropy spells differently.
_UNIT_ALIASES = {"sec": "s", "seconds": "s", "days": "d"}
_QUERY_TYPES = ("Real", "Dummy")


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
                      f"({len(response.content or b'')} bytes)")

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
        if not isinstance(instrument, str) or not instrument:
            raise InvalidQueryError(f"instrument must be a non-empty string, not {instrument!r}")
        key = (self.server, instrument)
        with self._meta_lock:
            if key not in self._meta_cache:
                from .cache import DescriptionCache

                stored = DescriptionCache(self.cache_location)
                raw = stored.get(self.server, instrument)
                if raw is None:
                    raw = self._dispatcher.meta_data(instrument, token=self._token())
                    self._meta_cache[key] = parse_meta_data(raw)
                    stored.put(self.server, instrument, raw)
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
        products, parameters = self._meta(instrument)
        if product not in products:
            hint = _suggest(product, products)
            raise InvalidQueryError(f"{instrument} has no product {product!r}{hint}; "
                                    f"its products are: {', '.join(sorted(products))}")
        query = products[product]
        # The source and instrument queries (product None) apply to every product.
        return [p for p in parameters if p["product"] in (None, product) or p["query"] == query]

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
        from astropy.table import Table

        rows = self._product_parameters(instrument, product)
        names = ("name", "default", "unit", "query", "allowed_values", "min", "max", "optional")
        table = Table(names=names, dtype=["U64", object, "U32", "U64", object, object, object, object])
        for row in rows:
            if row["name"] == "token":
                continue
            table.add_row([row["name"], row["default"], row["unit"] or "", row["query"] or "",
                           row["allowed_values"], row["min"], row["max"], row["optional"]])
        table.meta.update(instrument=instrument, product=product, server=self.server)
        return table

    # -- parameters -----------------------------------------------------------------

    def _wire_value(self, name, value, unit):
        from astropy.table import Table
        from astropy.time import Time

        if isinstance(value, Time):
            if not value.isscalar:
                raise InvalidQueryError(f"{name} must be a single time")
            return value.utc.isot
        if isinstance(value, u.Quantity):
            if unit is None:
                raise InvalidQueryError(
                    f"{name}: the parameter's unit is unknown without validation; give a plain "
                    "number in the parameter's unit, or leave validate=True")
            target = _UNIT_ALIASES.get(unit, unit)
            try:
                return float(value.to_value(u.Unit(target)))
            except (ValueError, TypeError, u.UnitsError):
                raise InvalidQueryError(
                    f"{name} is given in {value.unit}, which cannot be converted to the "
                    f"parameter's unit {unit!r}") from None
        if isinstance(value, Table):
            if name != "selected_catalog":
                raise InvalidQueryError(f"{name} cannot be a Table")
            from .products import catalog_to_selected_catalog
            return catalog_to_selected_catalog(value)
        return value

    def _check_params(self, instrument, product, params):
        declared = {p["name"]: p for p in self._product_parameters(instrument, product)}
        allowed = set(declared) | _CONTROL_ARGS
        converted = {}
        for name, value in params.items():
            if name not in allowed:
                hint = _suggest(name, allowed - {"token"})
                raise InvalidQueryError(
                    f"{instrument}/{product} has no parameter {name!r}{hint}. "
                    "See Mmoda.get_parameters(instrument, product).")
            spec = declared.get(name, {})
            value = self._wire_value(name, value, spec.get("unit"))
            _check_restrictions(name, value, spec)
            converted[name] = value
        return converted

    def _prepare(self, instrument, product, query_type, params, *, validate):
        if not isinstance(instrument, str) or not instrument:
            raise InvalidQueryError(f"instrument must be a non-empty string, not {instrument!r}")
        if not isinstance(product, str) or not product:
            raise InvalidQueryError(f"product must be a non-empty string, not {product!r}")
        if query_type not in _QUERY_TYPES:
            raise InvalidQueryError(f"query_type must be one of {_QUERY_TYPES}, not {query_type!r}")
        reserved = sorted(set(params) & _RESERVED_ARGS)
        if reserved:
            raise InvalidQueryError(
                f"{', '.join(reserved)} cannot be given as parameters: the client sets "
                f"{'it' if len(reserved) == 1 else 'them'} (log in with Mmoda.login for the token)")
        if validate:
            return self._check_params(instrument, product, params)
        # Without validation no request is made; units are known only if cached.
        cached = self._meta_cache.get((self.server, instrument))
        units = {p["name"]: p["unit"] for p in cached[1]} if cached else {}
        return {name: self._wire_value(name, value, units.get(name))
                for name, value in params.items()}

    def _payload(self, instrument, product, query_type, wire):
        return dict(wire, instrument=instrument, product_type=product, query_type=query_type,
                    query_status="new", api="True")

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
        return self._tokens.info().subject if self._tokens.token else None

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
            return self._payload(instrument, product, query_type, wire)
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
            if isinstance(item, dict):
                item = dict(item)
                try:
                    instrument, product = item.pop("instrument"), item.pop("product")
                except KeyError:
                    raise InvalidQueryError("each request dict needs 'instrument' and 'product'") \
                        from None
                params = item
            elif isinstance(item, (tuple, list)) and len(item) == 3 and isinstance(item[2], dict):
                instrument, product, params = item
            else:
                raise InvalidQueryError("each request must be (instrument, product, params) or a "
                                        f"dict, not {type(item).__name__}")
            params = dict(params)
            kind = params.pop("query_type", query_type)
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

    def _integral_params(self, instrument, kind, coordinates, *, start_time, end_time,
                         radius=None, energy_range=None, max_pointings=None, osa_version=None,
                         scw_list=None, catalog=None, time_bin=None, detection_threshold=None):
        from .integral import instrument_info

        info = instrument_info(instrument, kind)
        position = _sky_position(coordinates)
        start, end = _time_range(start_time, end_time)
        params = {"RA": round(position.ra.deg, 8), "DEC": round(position.dec.deg, 8),
                  "T1": start.utc.isot, "T2": end.utc.isot}
        if info.energy_limits:
            low, high = _energy_range(energy_range if energy_range is not None
                                      else info.default_energy * u.keV, info)
            params.update(E1_keV=low, E2_keV=high)
        elif energy_range is not None:
            raise InvalidQueryError(f"{instrument} light curves have no energy selection")
        if radius is not None:
            params["radius"] = _angle_deg(radius, "radius")
        if max_pointings is not None:
            params["max_pointings"] = self._check_pointings(max_pointings)
        if osa_version is not None:
            if not isinstance(osa_version, str) or not osa_version.startswith("OSA"):
                raise InvalidQueryError(f"osa_version must look like 'OSA11.2', not {osa_version!r}")
            params["osa_version"] = osa_version
        if scw_list is not None:
            params["scw_list"] = _science_windows(scw_list)
        if catalog is not None:
            params["selected_catalog"] = catalog
        if time_bin is not None:
            params["time_bin"] = _time_bin(time_bin, info)
        if detection_threshold is not None:
            if isinstance(detection_threshold, bool) or not isinstance(detection_threshold, (int, float)) \
                    or not detection_threshold > 0:
                raise InvalidQueryError("detection_threshold must be a positive number of sigma")
            params["detection_threshold"] = float(detection_threshold)
        meta = {"instrument": instrument, "start_time": start.utc.isot, "end_time": end.utc.isot,
                "ra": params["RA"], "dec": params["DEC"]}
        if "E1_keV" in params:
            meta.update(E1_keV=params["E1_keV"], E2_keV=params["E2_keV"])
        return info.products[kind], params, meta

    def _check_pointings(self, max_pointings):
        from .integral import MAX_POINTINGS_GENERAL, MAX_POINTINGS_HPC

        if isinstance(max_pointings, bool) or not isinstance(max_pointings, int) or max_pointings < 1:
            raise InvalidQueryError(f"max_pointings must be a positive integer, not {max_pointings!r}")
        roles = self._tokens.info().roles if self._tokens.token else ()
        if max_pointings > MAX_POINTINGS_HPC and "unige-hpc-extreme" not in roles:
            raise InvalidQueryError(
                f"max_pointings={max_pointings} is above {MAX_POINTINGS_HPC}, which needs the "
                "'unige-hpc-extreme' role (your token lacks it)")
        if max_pointings > MAX_POINTINGS_GENERAL and not {"unige-hpc-full", "unige-hpc-extreme"} & set(roles):
            raise InvalidQueryError(
                f"max_pointings={max_pointings} is above {MAX_POINTINGS_GENERAL}, which needs the "
                "'unige-hpc-full' role" + ("" if self._tokens.token else " (and you are not logged in)"))
        return max_pointings

    def _integral_products(self, instrument, kind, coordinates, *, start_time, end_time,
                           query_type, timeout, cache, get_query_payload, options, params):
        product, wire, meta = self._integral_params(instrument, kind, coordinates,
                                                    start_time=start_time, end_time=end_time,
                                                    **options)
        reserved = set(params) & set(wire)
        if reserved:
            raise InvalidQueryError(f"give {', '.join(sorted(reserved))} through the method's own "
                                    "arguments, not as extra parameters")
        wire.update(params)
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
        from .integral import shape_catalog

        products, meta = self._integral_products(
            instrument, "image", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=dict(radius=radius, energy_range=energy_range, max_pointings=max_pointings,
                         osa_version=osa_version, scw_list=scw_list,
                         detection_threshold=detection_threshold),
            params=params)
        if get_query_payload:
            return products
        catalogs = [name for name in products if products.kind[name] == "catalog"]
        if not catalogs:
            import warnings

            from astropy.table import Table
            from astroquery.exceptions import NoResultsWarning

            warnings.warn(f"MMODA returned no source catalog for this {instrument} image",
                          NoResultsWarning)
            return Table(meta=meta)
        return shape_catalog(products[catalogs[0]], meta=meta)

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
        return [products[name] for name in products if products.kind[name] == "fits"]

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
        from .integral import LightCurveSet, lightcurve_to_timeseries

        options = dict(time_bin=time_bin, energy_range=energy_range)
        if instrument != "spi_acs":
            options.update(radius=radius, max_pointings=max_pointings, osa_version=osa_version,
                           scw_list=scw_list, catalog=catalog)
        elif any(v is not None for v in (radius, max_pointings, osa_version, scw_list, catalog)):
            raise InvalidQueryError("SPI-ACS light curves take no radius, max_pointings, "
                                    "osa_version, scw_list or catalog")
        products, meta = self._integral_products(
            instrument, "lightcurve", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=options, params=params)
        if get_query_payload:
            return products
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
        from .integral import group_spectra

        products, meta = self._integral_products(
            instrument, "spectrum", coordinates, start_time=start_time, end_time=end_time,
            query_type=query_type, timeout=timeout, cache=cache, get_query_payload=get_query_payload,
            options=dict(energy_range=energy_range, catalog=catalog, radius=radius,
                         max_pointings=max_pointings, osa_version=osa_version, scw_list=scw_list),
            params=params)
        if get_query_payload:
            return products
        return group_spectra(products, meta=meta)


def _sky_position(coordinates):
    from astropy.coordinates import SkyCoord

    if isinstance(coordinates, SkyCoord):
        position = coordinates
    elif isinstance(coordinates, str) and coordinates.strip():
        try:
            position = SkyCoord(coordinates, frame="icrs")
        except (ValueError, u.UnitsError):
            try:
                position = SkyCoord(coordinates, frame="icrs", unit="deg")
            except (ValueError, u.UnitsError):
                raise InvalidQueryError(
                    f"coordinates {coordinates!r} are not coordinates; give a SkyCoord (e.g. "
                    "SkyCoord.from_name(...)) or a string like '255.98 -37.84' or "
                    "'17h03m56.8s -37d50m39s'") from None
    else:
        raise InvalidQueryError(f"coordinates must be a SkyCoord or a string, not "
                                f"{type(coordinates).__name__}")
    if not position.isscalar:
        raise InvalidQueryError("coordinates must be a single position")
    return position.icrs


def _time_range(start_time, end_time):
    from astropy.time import Time

    times = []
    for name, value in (("start_time", start_time), ("end_time", end_time)):
        try:
            time = value if isinstance(value, Time) else Time(value)
        except (ValueError, TypeError):
            raise InvalidQueryError(f"{name}={value!r} is not a time") from None
        if not time.isscalar:
            raise InvalidQueryError(f"{name} must be a single time")
        times.append(time)
    if times[0] >= times[1]:
        raise InvalidQueryError(f"start_time ({times[0].utc.isot}) must be before end_time "
                                f"({times[1].utc.isot})")
    return times


def _energy_range(energy_range, info):
    try:
        low, high = energy_range
    except (TypeError, ValueError):
        raise InvalidQueryError("energy_range must be two energies, e.g. (30, 80) * u.keV") from None
    values = []
    for value in (low, high):
        if not isinstance(value, u.Quantity):
            raise InvalidQueryError("energy_range must be a Quantity, e.g. (30, 80) * u.keV")
        try:
            values.append(float(value.to_value(u.keV, equivalencies=u.spectral())))
        except u.UnitsError:
            raise InvalidQueryError(f"energy_range must be in energy units, not {value.unit}") \
                from None
    low, high = values
    limit_low, limit_high = info.energy_limits
    if not low < high:
        raise InvalidQueryError(f"energy_range: the lower energy ({low:g} keV) must be below the "
                                f"upper one ({high:g} keV)")
    if low < limit_low or high > limit_high:
        raise InvalidQueryError(f"energy_range {low:g}-{high:g} keV is outside the {info.name} "
                                f"range {limit_low:g}-{limit_high:g} keV")
    return low, high


def _angle_deg(value, name):
    if not isinstance(value, u.Quantity):
        raise InvalidQueryError(f"{name} must be an angle Quantity, e.g. 8 * u.deg")
    try:
        degrees = float(value.to_value(u.deg))
    except u.UnitsError:
        raise InvalidQueryError(f"{name} must be an angle, not {value.unit}") from None
    if not 0 < degrees <= 180:
        raise InvalidQueryError(f"{name} must be between 0 and 180 deg, not {degrees:g} deg")
    return degrees


def _time_bin(value, info):
    if not isinstance(value, u.Quantity):
        raise InvalidQueryError("time_bin must be a time Quantity, e.g. 1000 * u.s")
    try:
        seconds = float(value.to_value(u.s))
    except u.UnitsError:
        raise InvalidQueryError(f"time_bin must be a time, not {value.unit}") from None
    if not seconds > 0:
        raise InvalidQueryError(f"time_bin must be positive, not {seconds:g} s")
    if info.min_time_bin and seconds < info.min_time_bin:
        raise InvalidQueryError(f"time_bin {seconds:g} s is below the {info.name} minimum of "
                                f"{info.min_time_bin:g} s")
    if info.max_time_bin and seconds > info.max_time_bin:
        raise InvalidQueryError(f"time_bin {seconds:g} s is above the {info.name} maximum of "
                                f"{info.max_time_bin:g} s")
    return seconds


def _science_windows(scw_list):
    import re

    if isinstance(scw_list, str):
        scw_list = [item for item in scw_list.split(",")]
    scws = [str(item).strip() for item in scw_list]
    bad = [scw for scw in scws if not re.fullmatch(r"\d{12}\.\d{3}", scw)]
    if not scws or bad:
        raise InvalidQueryError("scw_list must list science windows like '066500220010.001'"
                                + (f"; not {bad[0]!r}" if bad else ""))
    return scws


def _never():
    return False


def _suggest(name, candidates):
    close = difflib.get_close_matches(str(name), [str(c) for c in candidates], n=3, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _check_restrictions(name, value, spec):
    allowed = spec.get("allowed_values")
    if allowed and value is not None and value not in allowed:
        raise InvalidQueryError(f"{name}={value!r} is not allowed; choose one of {allowed}")
    for bound, compare, word in (("min", lambda v, b: v < b, "below"),
                                 ("max", lambda v, b: v > b, "above")):
        limit = spec.get(bound)
        if limit is not None and isinstance(value, (int, float)) and not isinstance(value, bool) \
                and compare(value, limit):
            raise InvalidQueryError(f"{name}={value!r} is {word} the allowed {bound}imum {limit}")


Mmoda = MmodaClass()
Mmoda.__doc__ = textwrap.dedent("""\
    The ready-made `MmodaClass` instance for the public MMODA dispatcher.""")
