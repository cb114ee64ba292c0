"""The astroquery face of MMODA: `MmodaClass` and its instance `Mmoda`."""
import difflib
import textwrap
import threading

from astroquery import log
from astroquery.query import QueryWithLogin

from . import conf
from .dispatcher import DispatcherClient, encode_params, parse_meta_data
from .exceptions import InvalidQueryError
from .jobs import Job
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

    Examples
    --------
    >>> from astroquery_mmoda import Mmoda
    >>> Mmoda.server  # doctest: +SKIP
    'https://www.astro.unige.ch/mmoda/dispatch-data'
    """

    def __init__(self, *, server=None):
        super().__init__()
        from .auth import TokenManager

        self._server = None
        if server is not None:
            self.server = server
        self._session.headers["User-Agent"] = (
            f"{self._session.headers.get('User-Agent', '')} astroquery_mmoda/{version}".strip())
        self._tokens = TokenManager(server_url=self._server_url)
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
                raw = self._dispatcher.meta_data(instrument, token=self._token())
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
        from astropy import units as u
        from astropy.table import Table
        from astropy.time import Time

        if isinstance(value, Time):
            if not value.isscalar:
                raise InvalidQueryError(f"{name} must be a single time")
            return value.utc.isot
        if isinstance(value, u.Quantity):
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
        return {name: self._wire_value(name, value, None) for name, value in params.items()}

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

    def _finisher(self, key, cache):
        def finished(job, envelope):
            self._journal.remove(key)
            if cache and envelope.succeeded:
                self._results.put(key, envelope.data)
        return finished

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
                return Job.from_answer(self, instrument, product, query_type, wire, stored)
        job = self._new_job(key, instrument, product, query_type, wire, cache=cache)
        job.update()
        return job

    def _new_job(self, key, instrument, product, query_type, wire, *, cache):
        """A job for this request: the journaled one if it is unfinished, else a new one."""
        job = Job(self, instrument, product, query_type, wire, token=self._token(),
                  on_finish=self._finisher(key, cache))
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
                jobs.append(Job.from_answer(self, instrument, product, kind, wire, stored))
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
                  on_finish=self._finisher(key, True) if key else None)
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
        """Delete the cached results (``jobs=True``: also forget unfinished jobs)."""
        removed = self._results.clear()
        if jobs:
            self._journal.clear()
        log.debug(f"MMODA cache: {removed} results removed")


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
