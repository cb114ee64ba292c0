"""The astroquery face of MMODA: `MmodaClass` and its instance `Mmoda`."""
import textwrap
import threading

from astroquery import log
from astroquery.query import QueryWithLogin

from . import conf
from . import integral
from . import params as _params
from .cache import DescriptionCache
from .description_methods import DescriptionMethods
from .dispatcher import DispatcherClient
from .exceptions import InvalidQueryError, LoginError
from .integral_methods import IntegralMethods
from .jobs import _seconds
from .submission import Submitter
from .version import version

__all__ = ["Mmoda", "MmodaClass"]


class _TokenLogin(QueryWithLogin):
    # astroquery generates a public login() for the class that defines _login;
    # keeping _login here lets MmodaClass.login return the TokenInfo.
    def _login(self, token=None, *, store_token=False, reenter_token=False):
        self._tokens.login(token, store_token=store_token, reenter_token=reenter_token)
        return True


class MmodaClass(DescriptionMethods, IntegralMethods, _TokenLogin):
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

    Notes
    -----
    The INTEGRAL methods (``query_region``, ``get_images``, ``get_lightcurve``,
    ``get_spectrum`` and their ``_async`` forms) are documented with
    `~astroquery_mmoda.integral_methods.IntegralMethods`.

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
        self._submitter = Submitter(self, server=self._server_url, token=self._token, user=self._user,
                                    cache_location=lambda: self.cache_location,
                                    on_journaled=self._tokens.expiry_warning)

    def __reduce__(self):
        # The default client unpickles as itself; any other as a new client of the same server
        # (its token comes again from the keyring or the environment, never from the pickle).
        if self is Mmoda:
            return "Mmoda"
        return _client_of, (self.server,)

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
            from .redaction import redact

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

    def get_token(self):
        """The logged-in token itself, for use elsewhere (e.g. oda_api, curl, another client).

        It is a password: the package never shows it (logs, errors, reprs),
        and neither should you.

        Raises
        ------
        `~astroquery_mmoda.exceptions.LoginError`
            When not logged in.
        """
        token = self._tokens.token
        if not token:
            raise LoginError("not logged in to MMODA: call Mmoda.login() first")
        return token

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

    # -- parameters -----------------------------------------------------------------

    def _prepare(self, instrument, product, query_type, params, *, validate):
        """``(instrument, converted parameters)``: the dispatcher's instrument name when validated."""
        _params.check_request(instrument, product, query_type, params)
        if validate:
            instrument = self._instrument(instrument)
            if params.get("max_pointings") is not None and instrument in integral.INSTRUMENTS:
                # As the INTEGRAL methods check it: the token's roles set the limit.
                roles, logged_in = self._integral_login(need_roles=True)
                integral.check_pointings(params["max_pointings"], roles, logged_in=logged_in)
            return instrument, _params.check_params(instrument, product, params,
                                                    self._product_parameters(instrument, product))
        meta = self._meta_cache.get((self.server, instrument))
        if meta is None and _params.needs_units(params):
            # A Quantity is converted to the parameter's unit, which only the description says.
            meta = self._meta(instrument)
        return instrument, _params.convert_unchecked(params, meta)

    # -- products and jobs --------------------------------------------------------------

    def _user(self):
        # The cache keys on the identity (sub, else email) and the roles of the token.
        return self._tokens.info() if self._tokens.token else None

    @property
    def _results(self):
        return self._submitter.results

    @property
    def _journal(self):
        return self._submitter.journal

    def _key(self, instrument, product, query_type, params):
        return self._submitter.key(instrument, product, query_type, params)

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
            per-job session id) instead of sending them.  No product request
            is made; the instrument's description is fetched (once) only when
            a `~astropy.units.Quantity` must be converted to a parameter's unit.
        **params
            The product's parameters; `~astropy.time.Time`,
            `~astropy.units.Quantity` and catalog `~astropy.table.Table` values
            are converted; a `pathlib.Path` or an open binary file is sent as
            a file upload (see `astroquery_mmoda.uploads`);
            ``selected_catalog=None`` means no catalog (it is not sent).

        Returns
        -------
        `~astroquery_mmoda.jobs.Job`
        """
        instrument, converted = self._prepare(instrument, product, query_type, params,
                                              validate=validate and not get_query_payload)
        wire = _params.encode(converted)
        if get_query_payload:
            return _params.payload(instrument, product, query_type, wire)
        return self._submitter.submit(instrument, product, query_type, converted, wire, cache=cache)

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
            instrument, converted = self._prepare(instrument, product, kind, params, validate=validate)
            calls.append((instrument, product, kind, converted))
        return JobGroup([self._submitter.prepare(instrument, product, kind, converted,
                                                 _params.encode(converted), cache=cache)
                         for instrument, product, kind, converted in calls])

    def from_oda_api(self, par_dict):
        """The arguments of `get_product` for an oda_api ``par_dict`` (e.g. the web site's API code).

        oda_api's ``product_type`` becomes ``query_type``; ``T_format='mjd'``
        with MJD numbers or strings, and numbers given as strings, are kept
        as they are; a ``token`` logs this client in (not stored); the keys
        that the client sets itself (``session_id``, ``query_status``, ...)
        are dropped, with one warning naming them.

        Parameters
        ----------
        par_dict : dict
            What oda_api code passes as ``DispatcherAPI(...).get_product(**par_dict)``.

        Returns
        -------
        dict
            ``instrument``, ``product``, ``query_type`` and the parameters.

        Examples
        --------
        >>> from astroquery_mmoda import Mmoda
        >>> par_dict = {"instrument": "isgri", "product": "isgri_image", "product_type": "Real",
        ...             "T1": "2003-03-15T23:27:40", "T2": "2003-03-16T00:03:12",
        ...             "RA": "255.98", "DEC": "-37.84", "E1_keV": "28", "E2_keV": "50"}
        >>> products = Mmoda.get_product(**Mmoda.from_oda_api(par_dict))  # doctest: +SKIP
        """
        from .migration import oda_api_request

        request, token, dropped = oda_api_request(par_dict)
        if token:
            self.login(token)
        if dropped:
            import warnings

            from .protocol import MmodaWarning

            warnings.warn(f"MMODA: left out of the oda_api request, the client sets them: "
                          f"{', '.join(dropped)}", MmodaWarning, stacklevel=2)
        return request

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
        entry = self._submitter.find(job_id, session_id)
        if entry is not None and instrument is None:
            wire = dict(entry.get("params") or {})
            job = self._submitter.attach(job_id, session_id or entry["session_id"], entry["instrument"],
                                         entry["product"], wire.pop("query_type", query_type), wire,
                                         key=entry.get("key"),
                                         status=entry.get("status") or "submitted")
        else:
            if instrument is None or product is None or session_id is None:
                raise InvalidQueryError(
                    f"job {job_id} is not in this computer's journal: give its session_id, "
                    "instrument, product and parameters")
            _, converted = self._prepare(instrument, product, query_type, params, validate=False)
            job = self._submitter.attach(
                job_id, session_id, instrument, product, query_type, _params.encode(converted),
                key=self._submitter.key(instrument, product, query_type, converted))
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
        return self._submitter.journal.as_table()

    def clear_cache(self, *, jobs=False):
        """Delete the cached results and instrument descriptions.

        ``jobs=True`` also forgets the unfinished jobs.
        """
        import shutil

        removed = self._submitter.results.clear()
        shutil.rmtree(DescriptionCache(self.cache_location).directory, ignore_errors=True)
        self._meta_cache.clear()
        if jobs:
            self._submitter.journal.clear()
        log.debug(f"MMODA cache: {removed} results removed")

    def _integral_login(self, *, need_roles):
        """``(roles, logged_in)`` for the INTEGRAL checks (the token is read only when ``need_roles``)."""
        logged_in = bool(self._tokens.token)
        return (self._tokens.info().roles if logged_in and need_roles else ()), logged_in


def _never():
    return False


def _client_of(server):
    return MmodaClass(server=server)


def _default_client():
    """The package's stand-in for ``Mmoda``, made into a `MmodaClass` instance in place."""
    import astroquery_mmoda

    client = astroquery_mmoda._DEFAULT_CLIENT
    if type(client) is not MmodaClass:
        # object's own __class__ setter: the stand-in's __class__ is a read-only property.
        object.__dict__["__class__"].__set__(client, MmodaClass)
        MmodaClass.__init__(client)
    return client


Mmoda = _default_client()
Mmoda.__doc__ = textwrap.dedent("""\
    The ready-made `MmodaClass` instance for the public MMODA dispatcher.""")
