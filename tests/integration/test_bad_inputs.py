"""Bad arguments to the public API are refused before any request is sent.

The client's metadata cache is filled first (from the local dispatcher); then
`requests.Session.send` is replaced by a function that fails the test, so each
row proves that its error is raised without touching the network.
"""
import jwt
import keyring
import numpy as np
import pytest
import requests
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from astropy.time import Time

from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.exceptions import InvalidQueryError, LoginError, TokenExpiredError

pytestmark = pytest.mark.integration

CRAB = SkyCoord(83.63, 22.01, unit="deg")
TIMES = {"start_time": "2003-03-15T00:00:00", "end_time": "2003-03-16T00:00:00"}
JOB_ID = "0123456789abcdef"
SESSION_ID = "ABCDEFGHIJKLMNOP"
HAS_INTEGRAL = all(hasattr(MmodaClass, name)
                   for name in ("query_region", "get_images", "get_lightcurve", "get_spectrum"))
integral = pytest.mark.skipif(not HAS_INTEGRAL,
                              reason="MmodaClass has no INTEGRAL methods (query_region, ...) yet")


SELF_REFERENCING = []
SELF_REFERENCING.append(SELF_REFERENCING)
DEEPLY_NESTED = []
for _ in range(100_000):
    DEEPLY_NESTED = [DEEPLY_NESTED]


def unsigned(claims):
    return jwt.encode(claims, "a-secret-that-is-long-enough-for-hs256!", algorithm="HS256")


@pytest.fixture(scope="module")
def prepared(local_dispatcher, tmp_path_factory):
    """A logged-in client whose metadata of ``empty`` and ``empty-async`` is cached."""
    client = MmodaClass(server=local_dispatcher.url)
    client.cache_location = tmp_path_factory.mktemp("bad-inputs-cache")
    client.login(local_dispatcher.mint_token("general"))
    for instrument in ("empty", "empty-async"):
        client.list_products(instrument)
    return client


@pytest.fixture
def offline(prepared, monkeypatch):
    """The prepared client, with every HTTP request failing the test."""
    sent = []

    def refuse(session, request, **kwargs):
        sent.append(request.method)
        pytest.fail(f"a {request.method} request was sent")

    monkeypatch.setattr(requests.Session, "send", refuse)
    # login() without a token must not find one anywhere, nor ask for one
    monkeypatch.delenv("ODA_TOKEN", raising=False)
    monkeypatch.setattr(keyring, "get_password", lambda *args: None)
    monkeypatch.setattr("astroquery_mmoda.auth.is_interactive", lambda: False)
    monkeypatch.setattr("astroquery_mmoda.auth.default_token_files", lambda: [])
    token = prepared._tokens.token
    prepared.sent = sent
    yield prepared
    prepared.login(token)  # rows that log in with a bad token leave the good one in place


def get(instrument="empty", product="numerical", **params):
    params.setdefault("query_type", "Dummy")
    return lambda c: c.get_product(instrument, product, **params)


ROWS = [
    # the client itself
    ("server-ftp", lambda c: MmodaClass(server="ftp://127.0.0.1/mmoda"), InvalidQueryError, "http"),
    ("server-no-scheme", lambda c: MmodaClass(server="127.0.0.1:8000"), InvalidQueryError, "http"),
    ("server-not-str", lambda c: MmodaClass(server=8000), InvalidQueryError, "http"),
    # login
    ("login-int", lambda c: c.login(12345), LoginError, "string"),
    ("login-not-jwt", lambda c: c.login("not-a-token"), LoginError, "not a JWT"),
    ("login-garbage-jwt", lambda c: c.login("abc.def.ghi"), LoginError, "not a valid JWT"),
    ("login-non-ascii", lambda c: c.login("é.é.é".encode("latin-1")), LoginError, "non-ASCII"),
    ("login-expired", lambda c: c.login(unsigned({"sub": "a@b.c", "roles": "general", "exp": 1000})),
     TokenExpiredError, "expired"),
    ("login-no-exp", lambda c: c.login(unsigned({"sub": "a@b.c", "roles": "general"})),
     LoginError, "expiry"),
    ("login-nothing-found", lambda c: c.login(), LoginError, "No usable MMODA token"),
    # get_product / submit: names and types
    ("instrument-empty", get(""), InvalidQueryError, "instrument"),
    ("instrument-none", get(None), InvalidQueryError, "instrument"),
    ("instrument-int", get(42), InvalidQueryError, "instrument"),
    ("product-empty", get("empty", ""), InvalidQueryError, "product"),
    ("product-none", get("empty", None), InvalidQueryError, "product"),
    ("product-unknown", get("empty", "numerica"), InvalidQueryError, "did you mean 'numerical'"),
    ("query-type-bad", get(query_type="Fake"), InvalidQueryError, "query_type"),
    ("query-type-none", get(query_type=None), InvalidQueryError, "query_type"),
    ("reserved-token", lambda c: c.get_product("empty", "numerical", query_type="Dummy",
                                               token=unsigned({"sub": "a@b.c"})),
     InvalidQueryError, "token"),
    ("reserved-session", get(session_id=SESSION_ID), InvalidQueryError, "session_id"),
    ("reserved-job-id", get(job_id=JOB_ID), InvalidQueryError, "job_id"),
    ("reserved-query-status", get(query_status="done"), InvalidQueryError, "query_status"),
    ("reserved-product-type", lambda c: c.get_product("empty", "numerical", query_type="Dummy",
                                                      product_type="x"),
     InvalidQueryError, "product_type"),
    ("unknown-parameter", get(pp=1), InvalidQueryError, "did you mean 'p'"),
    # values
    ("nan", get(p=float("nan")), InvalidQueryError, "finite"),
    ("infinity", get(p=float("-inf")), InvalidQueryError, "finite"),
    ("numpy-nan", get(p=np.float64("nan")), InvalidQueryError, "finite"),
    ("bytes", get(p=b"5"), InvalidQueryError, "bytes"),
    ("wrong-unit", get(product="echo", query_type="Real", ang=3 * u.keV), InvalidQueryError,
     "cannot be converted"),
    ("wrong-unit-p", get(p=5 * u.s), InvalidQueryError, "cannot be converted"),
    ("time-array", get(product="echo", query_type="Real",
                       T1=Time(["2020-01-01", "2020-01-02"])), InvalidQueryError, "single time"),
    ("table-not-catalog", get(src_name=Table({"a": [1]})), InvalidQueryError, "Table"),
    ("scw-list-spaces", get(product="echo", query_type="Real", validate=False,
                            scw_list="066500220010.001 066500230010.001"),
     InvalidQueryError, "comma-separated"),
    ("nan-unvalidated", get(validate=False, p=float("nan")), InvalidQueryError, "finite"),
    ("nan-payload-only", get(get_query_payload=True, p=float("nan")), InvalidQueryError, "finite"),
    ("timeout-negative", get(p=5, timeout=-1), InvalidQueryError, "timeout"),
    ("timeout-text", get(p=5, timeout="soon"), InvalidQueryError, "timeout"),
    # values of types that cannot cross the wire
    ("set-of-mixed-types", get(p={1, "a"}), InvalidQueryError, "set"),
    ("set-bounded", get(p={5}), InvalidQueryError, "set"),
    ("time-inside-a-list", get(product="echo", query_type="Real", validate=False,
                               src_name=[Time("2020-01-01")]), InvalidQueryError, "Time"),
    ("int-of-5000-digits", get(p=10 ** 5000), InvalidQueryError, "too large"),
    ("int-of-5000-digits-in-a-list", get(validate=False, p=[10 ** 5000]), InvalidQueryError,
     "too large"),
    ("self-referencing-list", get(validate=False, p=SELF_REFERENCING), InvalidQueryError,
     "refers to itself"),
    ("deeply-nested-list", get(validate=False, p=DEEPLY_NESTED), InvalidQueryError, "nested"),
    ("dict-with-tuple-keys", get(validate=False, p={(1, 2): 3}), InvalidQueryError, "JSON"),
    ("lone-surrogate", get(product="echo", query_type="Real", src_name="Crab\ud800"),
     InvalidQueryError, "surrogate"),
    ("lone-surrogate-in-a-name", get(validate=False, **{"p\udc80": 5}), InvalidQueryError, "surrogate"),
    ("timeout-in-metres", get(p=5, timeout=5 * u.m), InvalidQueryError, "timeout"),
    ("timeout-array", get(p=5, timeout=[5, 6] * u.s), InvalidQueryError, "timeout"),
    ("timeout-huge-int", get(p=5, timeout=10 ** 5000), InvalidQueryError, "timeout"),
    ("quantity-array", get(p=[1, 2] * u.W), InvalidQueryError, "single value"),
    ("submit-unknown-parameter", lambda c: c.submit("empty", "numerical", query_type="Dummy", q=1),
     InvalidQueryError, "no parameter 'q'"),
    ("submit-async-bad-value", lambda c: c.submit("empty-async", "dummy", src_name=float("nan")),
     InvalidQueryError, "finite"),
    # metadata
    ("parameters-instrument-empty", lambda c: c.get_parameters("", "numerical"), InvalidQueryError,
     "instrument"),
    ("parameters-instrument-none", lambda c: c.get_parameters(None, "numerical"),
     InvalidQueryError, "instrument"),
    ("parameters-product-unknown", lambda c: c.get_parameters("empty", "nosuch"), InvalidQueryError,
     "no product"),
    ("parameters-product-none", lambda c: c.get_parameters("empty", None), InvalidQueryError,
     "no product"),
    ("products-empty", lambda c: c.list_products(""), InvalidQueryError, "instrument"),
    ("products-none", lambda c: c.list_products(None), InvalidQueryError, "instrument"),
    ("products-list", lambda c: c.list_products(["empty"]), InvalidQueryError, "instrument"),
    # jobs
    ("job-empty", lambda c: c.get_job(""), InvalidQueryError, "job_id"),
    ("job-none", lambda c: c.get_job(None), InvalidQueryError, "job_id"),
    ("job-int", lambda c: c.get_job(1234), InvalidQueryError, "job_id"),
    ("job-unknown", lambda c: c.get_job(JOB_ID), InvalidQueryError, "journal"),
    ("job-no-product", lambda c: c.get_job(JOB_ID, SESSION_ID, instrument="empty-async"),
     InvalidQueryError, "journal"),
    ("job-bad-query-type", lambda c: c.get_job(JOB_ID, SESSION_ID, instrument="empty-async",
                                               product="dummy", query_type="Fake"),
     InvalidQueryError, "query_type"),
    ("many-short-tuple", lambda c: c.submit_many([("empty",)]), InvalidQueryError, "each request"),
    ("many-no-instrument", lambda c: c.submit_many([{"product": "numerical"}]), InvalidQueryError,
     "'instrument' and 'product'"),
    ("many-int-item", lambda c: c.submit_many([42]), InvalidQueryError, "each request"),
    ("many-string", lambda c: c.submit_many("empty"), InvalidQueryError, "each request"),
    ("many-none", lambda c: c.submit_many(None), TypeError, "not iterable"),
    ("many-one-bad-among-good", lambda c: c.submit_many(
        [("empty", "numerical", {"query_type": "Dummy", "p": 5}),
         ("empty", "numerical", {"query_type": "Dummy", "pp": 5})]),
     InvalidQueryError, "no parameter 'pp'"),
    ("many-bad-value", lambda c: c.submit_many(
        [("empty", "numerical", {"query_type": "Dummy", "p": float("nan")})]),
     InvalidQueryError, "finite"),
]


def integral_row(name, call, match):
    return pytest.param(name, call, InvalidQueryError, match, marks=integral, id=name)


INTEGRAL_ROWS = [
    integral_row("region-coordinates-int", lambda c: c.query_region(42, 8 * u.deg, **TIMES),
                 "coordinates"),
    integral_row("region-coordinates-array", lambda c: c.query_region(
        SkyCoord([1, 2], [3, 4], unit="deg"), 8 * u.deg, **TIMES), "single position"),
    integral_row("region-radius-negative", lambda c: c.query_region(CRAB, -1 * u.deg, **TIMES),
                 "radius"),
    integral_row("region-radius-energy", lambda c: c.query_region(CRAB, 8 * u.keV, **TIMES),
                 "radius"),
    integral_row("region-radius-text", lambda c: c.query_region(CRAB, "8", **TIMES), "radius"),
    integral_row("region-times-reversed", lambda c: c.query_region(
        CRAB, 8 * u.deg, start_time=TIMES["end_time"], end_time=TIMES["start_time"]), "before"),
    integral_row("region-time-garbage", lambda c: c.query_region(
        CRAB, 8 * u.deg, start_time="yesterday-ish", end_time=TIMES["end_time"]), "start_time"),
    integral_row("region-energy-reversed", lambda c: c.query_region(
        CRAB, 8 * u.deg, energy_range=(80, 30) * u.keV, **TIMES), "below"),
    integral_row("region-energy-outside", lambda c: c.query_region(
        CRAB, 8 * u.deg, energy_range=(30, 5000) * u.keV, **TIMES), "outside"),
    integral_row("region-energy-no-unit", lambda c: c.query_region(
        CRAB, 8 * u.deg, energy_range=(30, 80), **TIMES), "Quantity"),
    integral_row("region-instrument-unknown", lambda c: c.query_region(
        CRAB, 8 * u.deg, instrument="nosuch", **TIMES), "instrument"),
    integral_row("region-pointings-zero", lambda c: c.query_region(
        CRAB, 8 * u.deg, max_pointings=0, **TIMES), "max_pointings"),
    integral_row("region-pointings-role", lambda c: c.query_region(
        CRAB, 8 * u.deg, max_pointings=100, **TIMES), "unige-hpc-full"),
    integral_row("region-scw-bad", lambda c: c.query_region(
        CRAB, 8 * u.deg, scw_list=["0665"], **TIMES), "scw_list"),
    integral_row("region-osa-bad", lambda c: c.query_region(
        CRAB, 8 * u.deg, osa_version="11.2", **TIMES), "osa_version"),
    integral_row("region-duplicate-parameter", lambda c: c.query_region(
        CRAB, 8 * u.deg, RA=10.0, **TIMES), "RA"),
    integral_row("images-threshold-negative", lambda c: c.get_images(
        CRAB, 8 * u.deg, detection_threshold=-1, **TIMES), "detection_threshold"),
    integral_row("spectrum-spi-acs", lambda c: c.get_spectrum(CRAB, instrument="spi_acs", **TIMES),
                 "spectrum"),
    integral_row("lightcurve-bin-too-small", lambda c: c.get_lightcurve(
        CRAB, time_bin=1 * u.s, **TIMES), "time_bin"),
    integral_row("lightcurve-bin-no-unit", lambda c: c.get_lightcurve(
        CRAB, time_bin=100, **TIMES), "time_bin"),
    integral_row("region-split-by-bad", lambda c: c.query_region(CRAB, 8 * u.deg, split_by="day", **TIMES),
                 "split_by must be 'count' or 'revolution'"),
    integral_row("region-radius-array", lambda c: c.query_region(CRAB, [1, 2] * u.deg, **TIMES),
                 "radius"),
    integral_row("region-scw-int", lambda c: c.query_region(CRAB, 8 * u.deg, scw_list=12, **TIMES),
                 "scw_list"),
    integral_row("region-scw-ints", lambda c: c.query_region(CRAB, 8 * u.deg, scw_list=[66500220010],
                                                             **TIMES), "scw_list"),
    integral_row("region-energy-arrays", lambda c: c.query_region(
        CRAB, 8 * u.deg, energy_range=([30, 40], [80, 90]) * u.keV, **TIMES), "energy_range"),
    integral_row("region-start-time-in-a-list", lambda c: c.query_region(
        CRAB, 8 * u.deg, start_time=[Time("2003-03-15")], end_time=TIMES["end_time"]), "single time"),
    integral_row("region-start-time-set", lambda c: c.query_region(
        CRAB, 8 * u.deg, start_time={"2003-03-15"}, end_time=TIMES["end_time"]), "start_time"),
    integral_row("region-coordinates-surrogate", lambda c: c.query_region("83.6 22\ud800", 8 * u.deg,
                                                                          **TIMES), "coordinates"),
    integral_row("region-pointings-huge", lambda c: c.query_region(
        CRAB, 8 * u.deg, max_pointings=10 ** 5000, **TIMES), "max_pointings"),
    integral_row("images-threshold-huge-int", lambda c: c.get_images(
        CRAB, 8 * u.deg, detection_threshold=10 ** 5000, **TIMES), "detection_threshold"),
    integral_row("lightcurve-bin-array", lambda c: c.get_lightcurve(
        CRAB, time_bin=[100, 200] * u.s, **TIMES), "time_bin"),
    integral_row("lightcurve-timeout-metres", lambda c: c.get_lightcurve(
        CRAB, time_bin=100 * u.s, timeout=5 * u.m, **TIMES), "timeout"),
    integral_row("lightcurve-spi-acs-radius", lambda c: c.get_lightcurve(
        CRAB, instrument="spi_acs", radius=8 * u.deg, **TIMES), "SPI-ACS"),
    integral_row("lightcurve-spi-acs-energy", lambda c: c.get_lightcurve(
        CRAB, instrument="spi_acs", energy_range=(30, 80) * u.keV, **TIMES), "energy"),
]


def _param(row):
    if hasattr(row, "marks"):  # already a pytest.param
        return pytest.param(*row.values, marks=row.marks, id=row.values[0])
    return pytest.param(*row, id=row[0])


@pytest.mark.parametrize("name, call, error, match", [_param(row) for row in ROWS + INTEGRAL_ROWS])
def test_refused_before_any_request(offline, name, call, error, match):
    with pytest.raises(error, match=match) as raised:
        call(offline)
    assert offline.sent == []
    assert offline._tokens.token not in str(raised.value)


def test_table_has_enough_rows():
    assert len(ROWS) + len(INTEGRAL_ROWS) >= 30
    assert len({_param(row).id for row in ROWS + INTEGRAL_ROWS}) == len(ROWS) + len(INTEGRAL_ROWS)
