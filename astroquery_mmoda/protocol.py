"""The dispatcher's protocol: how parameters are encoded and answers read.

Parameter encoding, the ``run_analysis`` answer envelope (tokens removed), and
the mapping of failed jobs to `~astroquery_mmoda.exceptions.JobFailedError`
and `~astroquery_mmoda.exceptions.NoDataError`.  No HTTP here: see
`astroquery_mmoda.dispatcher` and `astroquery_mmoda.transport`.
"""
import json
import math
import numbers
import re
import warnings
from dataclasses import dataclass, field

from .callers import user_stacklevel
from .exceptions import InvalidQueryError, JobFailedError, NoDataError, ProtocolError, _shorten
from .metadata import loads_json
from .redaction import count_secrets, redact, scrub

__all__ = ["Envelope", "MmodaWarning", "encode_params", "envelope_from_data", "failure_reason",
           "parse_envelope", "raise_for_job_failure", "warn_comment"]

#: Value the dispatcher reads as "explicitly empty optional parameter".
NULL = "\x00"
# Sent as given, never JSON-encoded: the server parses these itself.
_COMMA_LISTS = ("scw_list", "catalog_selected_objects")
# Messages of jobs that ran but found nothing to work on.
_NO_DATA_MARKERS = ("failed: get dataserver products", "no usable data", "nodata", "no data")
_TERMINAL = ("done", "failed")
# Paragraphs of the dispatcher's failure texts that say nothing about the failure.
_BOILERPLATE_RE = re.compile(r"support team has been notified|write a feedback|investigating to resolve",
                             re.IGNORECASE)
_STATUS_RE = re.compile(r"[a-z][a-z_-]{0,31}")
# Job ids are hex digests and session ids 16 of [A-Z0-9]; anything outside this alphabet could
# reach a terminal, a shell command we suggest or a file name.
_ID_RE = re.compile(r"[A-Za-z0-9_.-]{1,128}")


class MmodaWarning(UserWarning):
    """Something the dispatcher said that the user should know.

    Examples
    --------
    >>> import warnings
    >>> from astroquery_mmoda import Mmoda
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", MmodaWarning)  # e.g. comments on unused parameters
    ...     products = Mmoda.get_product("spi_acs", "spi_acs_lc", RA=83.63, DEC=22.01,
    ...                                  T1="2003-03-15T23:27:40", T2="2003-03-15T23:32:40",
    ...                                  time_bin=2)  # doctest: +SKIP
    """


def _encode_value(key, value):
    if value is None:
        return NULL
    if isinstance(value, bool):
        return "True" if value else "False"
    if key in _COMMA_LISTS and isinstance(value, (list, tuple, set, frozenset)):
        items = [str(item).strip() for item in value]
        return ",".join(sorted(items) if isinstance(value, (set, frozenset)) else items)
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        return _json_value(key, value)
    if isinstance(value, numbers.Integral):
        return _integer_text(key, value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value):
            raise InvalidQueryError(f"parameter {key!r} must be a finite number, not {value}")
        return repr(value)
    if isinstance(value, bytes):
        raise InvalidQueryError(f"parameter {key!r}: bytes cannot be sent, give a str")
    return str(value)


def _integer_text(key, value):
    try:
        return str(int(value))
    except ValueError:  # more digits than int-to-str conversion allows
        raise InvalidQueryError(f"parameter {key!r}: the integer is too large to send") from None


def _json_value(key, value):
    """A list, tuple, set or dict as JSON, or a clear error for what JSON cannot carry."""
    if isinstance(value, (set, frozenset)):
        try:
            value = sorted(value)
        except TypeError:
            raise InvalidQueryError(f"parameter {key!r} is a set of values that cannot be ordered; "
                                    "give a list") from None
    try:
        return json.dumps(value, allow_nan=False)
    except RecursionError:
        raise InvalidQueryError(f"parameter {key!r} is nested too deeply to send") from None
    except ValueError as exc:
        text = str(exc)
        if "ircular" in text:
            problem = "refers to itself"
        elif "digits" in text:
            problem = "holds an integer too large to send"
        else:
            problem = "holds NaN or an infinity (not finite)"
        raise InvalidQueryError(f"parameter {key!r} {problem}") from None
    except TypeError as exc:
        raise InvalidQueryError(f"parameter {key!r} cannot be sent as JSON: "
                                f"{_shorten(str(exc), 120)}") from None


def _checked_text(what, text):
    """``text`` if it can be sent as UTF-8 (no lone surrogates), else an error."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidQueryError(f"{what} holds a lone surrogate character, which cannot be sent; "
                                "check how the text was read") from None
    return text


def encode_params(params):
    """Encode parameters the way the dispatcher parses them.

    * ``None`` → ``"\\x00"`` (an explicitly empty optional parameter);
    * booleans → ``"True"``/``"False"``;
    * ``scw_list`` and ``catalog_selected_objects`` given as sequences → one
      comma-separated string (repeated keys would lose all values but one);
    * other lists, tuples, sets and dicts → JSON (``selected_catalog`` must be
      given as its JSON string or dict);
    * numbers → their shortest exact decimal form; NaN and infinities refused.

    Parameters
    ----------
    params : dict
        Parameter names and Python values.

    Returns
    -------
    dict
        Parameter names and strings.

    Examples
    --------
    >>> encode_params({"flag": True, "scw_list": ["066500230010.001", "066500240010.001"],
    ...                "E1_keV": 30, "RA": 83.63, "selected_catalog": None})
    {'flag': 'True', 'scw_list': '066500230010.001,066500240010.001', 'E1_keV': '30', 'RA': '83.63',
     'selected_catalog': '\\x00'}
    """
    encoded = {}
    for key, value in params.items():
        if key == "scw_list" and isinstance(value, str) and " " in value.strip():
            raise InvalidQueryError(
                "scw_list must be comma-separated (or a list), not separated by spaces")
        key = _checked_text(f"the parameter name {key.encode('utf-8', 'replace')!r}", str(key))
        encoded[key] = _checked_text(f"parameter {key!r}", _encode_value(key, value))
    return encoded


@dataclass
class Envelope:
    """A parsed ``run_analysis`` answer, tokens removed.

    Attributes
    ----------
    query_status : str
        ``submitted``, ``progress``, ``ready``, ``done`` or ``failed``.
    job_id, session_id : str or None
    exit_status : dict
    reports : list of dict
        The back-end's progress reports (``job_monitor.full_report_dict_list``).
    products : dict
        The encoded products (decoded by `astroquery_mmoda.products`).
    data : dict
        The whole answer (its token echoes removed), as cached.
    token_echoes : int or None
        How often the answer as received held a token of this process (in the
        places removed from ``data``); None if it held some other token.

    Examples
    --------
    >>> envelope = parse_envelope('{"query_status": "done", "exit_status": {"status": 0}, '
    ...                           '"job_monitor": {"job_id": "d0c4a1e2", "session_id": "ABCDEFGH12345678"}}')
    >>> envelope.job_id, envelope.session_id, envelope.finished, envelope.succeeded
    ('d0c4a1e2', 'ABCDEFGH12345678', True, True)
    """
    query_status: str
    job_id: str = None
    session_id: str = None
    exit_status: dict = field(default_factory=dict)
    reports: list = field(default_factory=list)
    products: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict, repr=False)
    token_echoes: int = 0

    @property
    def finished(self):
        return self.query_status in _TERMINAL

    @property
    def succeeded(self):
        return self.query_status == "done" and self.exit_status.get("status", 0) == 0

    @property
    def comment(self):
        return (self.exit_status.get("comment") or "").strip()


def _strip_token_echoes(data):
    """Remove the token that the dispatcher echoes back in its answers.

    Only the small, known places are scrubbed: product data are never copied.
    Returns the cleaned answer and how often the places held a token of this
    process (`~astroquery_mmoda.redaction.count_secrets`).
    """
    data, echoes = dict(data), 0
    for key in ("job_monitor", "exit_status", "analysis_parameters"):
        if key in data:
            data[key], echoes = _scrubbed(data[key], echoes)
    products = data.get("products")
    if isinstance(products, dict):
        products = dict(products)
        for key in ("analysis_parameters", "api_code", "instrument_parameters", "input_param_dict"):
            if key in products:
                products[key], echoes = _scrubbed(products[key], echoes)
        data["products"] = products
    return data, echoes


def _scrubbed(value, echoes):
    found = count_secrets(value)
    return scrub(value), None if found is None or echoes is None else echoes + found


def parse_envelope(content):
    """Parse and check a ``run_analysis`` answer.

    Parameters
    ----------
    content : bytes or str
        The HTTP body.

    Returns
    -------
    Envelope

    Raises
    ------
    ProtocolError
        If the body is not JSON or lacks the fields every answer has.
    """
    return envelope_from_data(loads_json(content))


def envelope_from_data(data):
    """Check a decoded ``run_analysis`` answer (see `parse_envelope`) and wrap it."""
    if not isinstance(data, dict):
        raise ProtocolError(f"the dispatcher's answer is a JSON {type(data).__name__}, not an object")
    data, token_echoes = _strip_token_echoes(data)
    status = data.get("query_status")
    if not isinstance(status, str) or not status:
        raise ProtocolError("the dispatcher's answer has no query_status")
    if not _STATUS_RE.fullmatch(status):
        raise ProtocolError(f"the dispatcher's answer has an unknown query_status "
                            f"{_shorten(status, 40)!r}")
    exit_status, monitor, products = (
        {} if data.get(key) is None else data[key] for key in ("exit_status", "job_monitor", "products"))
    if not isinstance(exit_status, dict) or not isinstance(monitor, dict) \
            or not isinstance(products, dict):
        raise ProtocolError("the dispatcher's answer has exit_status, job_monitor or products "
                            "of the wrong type")
    exit_code = exit_status.get("status", 0)
    if isinstance(exit_code, bool) or not isinstance(exit_code, (int, float)):
        raise ProtocolError(f"exit_status.status is {exit_code!r}, not a number")
    job_id = monitor.get("job_id")
    session_id = monitor.get("session_id") or data.get("session_id")
    for name, value in (("job_id", job_id), ("session_id", session_id)):
        if value is not None and not isinstance(value, str):
            raise ProtocolError(f"{name} is {type(value).__name__}, not a string")
        if value is not None and not _ID_RE.fullmatch(value):
            raise ProtocolError(f"the dispatcher's answer has a malformed {name} "
                                f"({len(value)} characters, not all of [A-Za-z0-9_.-])")
    reports = monitor.get("full_report_dict_list") or []
    if not isinstance(reports, list):
        reports = []
    return Envelope(query_status=status, job_id=job_id, session_id=session_id,
                    exit_status=exit_status, reports=[r for r in reports if isinstance(r, dict)],
                    products=products, data=data, token_echoes=token_echoes)


def _text_field(mapping, name):
    value = mapping.get(name) if isinstance(mapping, dict) else None
    if value is None or isinstance(value, (dict, list)):
        return ""
    return str(value).strip()


def _useful(text):
    """``text`` without the dispatcher's boilerplate paragraphs (support team, feedback button)."""
    kept = [part.strip() for part in re.split(r"\n\s*\n", text)
            if part.strip() and not _BOILERPLATE_RE.search(part)]
    return " ".join(" ".join(kept).split())


def failure_reason(exit_status):
    """What a failed job's ``exit_status`` says, as one line, and whether it means "no data".

    Dispatcher 1.3.3 puts the reason in ``message`` and ``error_message``;
    1.3.6 puts the plugin's exception in ``debug_message`` (e.g.
    ``SpiacsAnalysisException('no usable data found')``) next to a generic
    "the support team has been notified" text.  All three are read.

    Returns
    -------
    text : str
        The distinct useful parts joined by "; " (tokens removed, shortened).
    no_data : bool
        Whether any of them carries a no-data marker.

    Examples
    --------
    >>> failure_reason({"message": "Error when getting query products",
    ...                 "error_message": "The support team has been notified",
    ...                 "debug_message": "SpiacsAnalysisException('no usable data found')"})
    ("Error when getting query products; SpiacsAnalysisException('no usable data found')", True)
    """
    parts = []
    for name in ("message", "error_message", "debug_message"):
        text = _useful(redact(_shorten(_text_field(exit_status, name), 4000)))
        if text and not any(text in seen for seen in parts):
            parts.append(_shorten(text, 1000))
    joined = "; ".join(parts)
    lowered = joined.lower().replace(" ", "")
    no_data = any(marker.replace(" ", "") in lowered for marker in _NO_DATA_MARKERS)
    return joined, no_data


def raise_for_job_failure(envelope):
    """Raise `JobFailedError` (or `NoDataError`) if the envelope reports a failure.

    A ``done`` answer whose ``exit_status.status`` is not 0 is a failure too.
    The message is `failure_reason`'s.
    """
    failed = envelope.query_status == "failed" or (
        envelope.query_status == "done" and envelope.exit_status.get("status", 0) != 0)
    if not failed:
        return
    text, no_data = failure_reason(envelope.exit_status)
    kind = NoDataError if no_data else JobFailedError
    error = kind(f"MMODA job failed: {text or 'the job failed'}", job_id=envelope.job_id,
                 status_code=envelope.data.get("status_code"),
                 debug_message=_text_field(envelope.exit_status, "debug_message"))
    raise error


def warn_comment(envelope):
    """Emit the dispatcher's comment (e.g. unused arguments) as one warning."""
    if envelope.comment:
        warnings.warn(f"MMODA: {_shorten(redact(envelope.comment), 2000)}", MmodaWarning,
                      stacklevel=user_stacklevel())
