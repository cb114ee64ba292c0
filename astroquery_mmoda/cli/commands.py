"""The commands of ``mmoda``: each takes the session and the parsed arguments, returns an exit code."""
import sys
from pathlib import Path

from .output import cell, format_table, note, print_lines, resume_hint
from .values import EXIT_LOGIN, EXIT_OK, EXIT_USAGE, PROG, CommandError, request_parameters

__all__ = []


class Session:
    """The client of one command, logged in when a token is at hand."""

    def __init__(self, args):
        self.args = args
        self.job = None
        self.login_error = None
        self._client = None

    def client(self, *, auto_login=True):
        """The client, made (and logged in, unless ``auto_login`` is False) on first use."""
        if self._client is None:
            from ..core import MmodaClass
            from ..exceptions import LoginError

            # Never prompt: a command without a token runs anonymously.
            client = MmodaClass(server=getattr(self.args, "server", None), prompt=not auto_login)
            if auto_login:
                try:
                    client.login()
                except LoginError as exc:
                    self.login_error = exc
            self._client = client
        return self._client


# -- commands -------------------------------------------------------------------------

def cmd_login(session, args):
    """``mmoda login``: check a token (found, or read from --token-file) and show its owner."""
    client = session.client(auto_login=False)
    token = None
    if args.token_file:
        try:
            if args.token_file == "-":
                token = sys.stdin.read()
            else:
                token = Path(args.token_file).expanduser().read_text(encoding="ascii")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read the token file {args.token_file}: "
                               f"{getattr(exc, 'strerror', None) or exc}", EXIT_LOGIN) from None
        if not token.strip():
            raise CommandError(f"the token file {args.token_file} is empty", EXIT_LOGIN)
    info = client.login(token, store_token=args.store)
    print_lines([str(info)])
    return EXIT_OK


def _describe_token(info):
    remaining = info.remaining.to_value("h")
    when = f"in {remaining:.1f} h" if remaining > 0 else f"{-remaining:.1f} h ago"
    rows = [("subject", info.subject), ("name", info.name), ("email", info.email),
            ("roles", ", ".join(info.roles) or "none"),
            ("expires", f"{info.expires.isot[:19]} UTC ({when})"), ("source", info.source)]
    return [f"{key + ':':<9} {value}" for key, value in rows if value]


def _logged_in_client(session):
    client = session.client()
    if session.login_error is not None:
        raise CommandError(f"not logged in: {session.login_error}", EXIT_LOGIN)
    return client


def cmd_token(session, args):
    """``mmoda token``: the logged-in token's owner, roles and expiry."""
    client = _logged_in_client(session)
    print_lines(_describe_token(client.token_info()))
    return EXIT_OK


def cmd_token_refresh(session, args):
    """``mmoda token refresh``: a token with a later expiry."""
    client = _logged_in_client(session)
    info = client.refresh_token(store=args.store)
    print_lines([str(info)])
    return EXIT_OK


def cmd_instruments(session, args):
    """``mmoda instruments``: one instrument a line."""
    print_lines(session.client().list_instruments())
    return EXIT_OK


def cmd_products(session, args):
    """``mmoda products``: the products of an instrument, one a line."""
    print_lines(session.client().list_products(args.instrument))
    return EXIT_OK


def cmd_parameters(session, args):
    """``mmoda parameters``: a table of a product's parameters."""
    table = session.client().get_parameters(args.instrument, args.product)
    columns = [("name", "name"), ("default", "default"), ("unit", "unit"),
               ("allowed_values", "allowed values"), ("min", "min"), ("max", "max")]
    rows = [[row[name] for name, _ in columns] for row in table]
    # Leave out the restriction columns that no parameter uses.
    keep = [i for i, (name, _) in enumerate(columns)
            if i < 3 or any(cell(row[i]) for row in rows)]
    print_lines(format_table([columns[i][1] for i in keep], [[row[i] for i in keep] for row in rows]))
    return EXIT_OK


def _write_products(products, args, job):
    """Write a job's products (INTEGRAL spectra XSPEC-ready, as `SpectrumSet.write`), all or nothing."""
    from ..writing import UnsafeTargetError

    try:
        paths = _write(products, args, job)
    except FileExistsError as exc:
        raise CommandError(f"{exc}".replace("use overwrite=True", "use --overwrite")) from None
    except UnsafeTargetError as exc:
        raise CommandError(f"nothing written: {exc} (remove it, or choose another folder with "
                           "--output)") from None
    if not paths:
        note(f"MMODA job {products.job_id} is done but returned no products")
    print_lines(str(path) for path in paths)
    return EXIT_OK


def _write(products, args, job):
    spectra = _integral_spectra(products, job.instrument, job.product)
    if spectra is None:
        return products.write(args.output, overwrite=args.overwrite)
    written = spectra.write(args.output, overwrite=args.overwrite)
    return [path for paths in written.values() for path in paths.values()]


def _integral_spectra(products, instrument, product):
    """The `SpectrumSet` of an INTEGRAL spectrum job whose products are all spectra, else None."""
    from ..integral import INSTRUMENTS, group_spectra

    info = INSTRUMENTS.get(instrument)
    if info is None or product != info.products.get("spectrum") or not products:
        return None
    spectra = group_spectra(products, meta={"instrument": instrument})
    if 3 * len(spectra) != len(products):
        note("the job returned more than spectra and responses: its products are written as they came")
        return None
    return spectra


def read_catalog(path):
    """The catalog `~astropy.table.Table` of ``--catalog`` (an ECSV file written by 'mmoda get')."""
    from astropy.table import Table

    try:
        return Table.read(path, format="ascii.ecsv")
    except FileNotFoundError:
        raise CommandError(f"the catalog file {path} does not exist", EXIT_USAGE) from None
    except Exception as exc:  # astropy raises many kinds for a file that is not ECSV
        raise CommandError(f"cannot read the catalog file {path} as ECSV: {exc}", EXIT_USAGE) from None


def _print_job(job):
    from ..jobs import summarize_reports

    rows = [("job_id", job.job_id), ("session_id", job.session_id),
            ("instrument", job.instrument), ("product", job.product), ("status", job.status)]
    summary = summarize_reports(job.reports)
    if summary:
        rows.append(("progress", summary))
    print_lines(f"{key + ':':<11} {value}" for key, value in rows)


def cmd_get(session, args):
    """``mmoda get``: submit a request; unless --no-wait, wait and write its products."""
    params = request_parameters(args.params)
    if args.catalog is not None:
        if "selected_catalog" in params:
            raise CommandError("give the catalog either as --catalog or as selected_catalog=, "
                               "not both", EXIT_USAGE)
        params["selected_catalog"] = read_catalog(args.catalog)
    client = session.client()
    job = client.submit(args.instrument, args.product, query_type="Dummy" if args.dummy else "Real",
                        cache=not args.no_cache, validate=not args.no_validate, **params)
    session.job = job
    if not args.wait:
        if job.status == "failed":
            job.result()  # raises the job's error
        _print_job(job)
        if job.finished:
            note("the job is finished: run the same command without --no-wait to write its "
                 "products (from the cache)")
        else:
            note(f"resume it with: {resume_hint(job)}")
        return EXIT_OK
    if not job.finished:
        note(f"MMODA job {job.job_id} is {job.status} (session {job.session_id}); waiting for it. "
             "Interrupting leaves it running.")
    return _write_products(job.result(args.timeout), args, job)


def cmd_jobs(session, args):
    """``mmoda jobs``: the unfinished journaled jobs (of this dispatcher unless --all)."""
    client = session.client()
    table = client.list_jobs()
    columns = ["job_id", "session_id", "instrument", "product", "status", "submitted", "updated"]
    if args.all:
        columns.append("url")
        rows = list(table)
    else:
        rows = [row for row in table if str(row["url"]).rstrip("/") == client.server]
    if not rows:
        note("no unfinished jobs" + ("" if args.all else f" for {client.server}"))
        return EXIT_OK
    # ISO times to the second, in UTC
    times = {"submitted", "updated"}
    print_lines(format_table(
        [f"{name} (UTC)" if name in times else name for name in columns],
        [[str(row[name])[:19].replace("T", " ") if name in times else row[name] for name in columns]
         for row in rows]))
    return EXIT_OK


def cmd_job(session, args):
    """``mmoda job``: a journaled job's status; with --wait (or once done) its products."""
    client = session.client()
    known = [row for row in client.list_jobs() if row["job_id"] == args.job_id
             and (args.session_id is None or row["session_id"] == args.session_id)]
    if not known:
        raise CommandError(
            f"job {args.job_id} is not among the unfinished jobs submitted from this computer "
            f"(see '{PROG} jobs'); a finished job is forgotten: repeat its '{PROG} get' command to "
            "get its products (from the cache)", EXIT_USAGE)
    job = client.get_job(args.job_id, args.session_id)
    session.job = job
    if args.wait:
        return _write_products(job.result(args.timeout), args, job)
    _print_job(job)
    if job.status == "failed":
        job.result()  # raises the job's error
    if job.finished:
        # A finished job leaves the journal: this is the last chance to get its files by id.
        note(f"the job is done: its products go to {args.output}")
        return _write_products(job.result(), args, job)
    return EXIT_OK
