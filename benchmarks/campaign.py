"""Benchmark: a long INTEGRAL campaign end to end against the local dispatcher.

Usage (from the repository root, where astroquery_mmoda is installed with its
``test`` extra)::

    python benchmarks/campaign.py                 # 1000 ScW, 20 jobs, every kind
    python benchmarks/campaign.py --scw 200       # a quicker run
    python benchmarks/campaign.py --kinds spectrum,image

For each kind of campaign (spectrum, light curve, mosaic, source catalog) it
runs a `~astroquery_mmoda.campaigns.Campaign` of ``--scw`` science windows
split into jobs of ``--per-job`` against a `LocalDispatcher` with the INTEGRAL
plugins, behind a counting `FaultProxy`, and reports:

* **wall time** of the campaign (submit, poll, decode, combine), result cache off;
* the **server-bound floor**: the same ``run_analysis`` requests (recorded by
  the proxy) sent again straight to the dispatcher with plain ``requests``,
  with the same concurrency, the answers read and nothing decoded;
* the **requests** the campaign sent (``run_analysis`` and any other);
* **peak memory** (``tracemalloc``, Python allocations) of the campaign, of one
  job's decoded products, and of the same jobs run as a plain
  ``submit_many(...).results()`` that holds every job's products.

The jobs use ``query_type="Dummy"``: the offline test sky's DDA stand-in serves
per-ScW products in Real mode for one science window only, so in Dummy mode
every job answers the test sky's fixed products (the plugins ignore
``scw_list`` there).  The requests, answers and decoding are the real ones.
The table is printed and written to ``benchmarks/campaign_results.md``.
"""
import argparse
import contextlib
import gc
import logging
import tempfile
import time
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.time import Time
from astropy.wcs import FITSFixedWarning
from astroquery import log

from astroquery_mmoda import conf
from astroquery_mmoda.campaigns import Campaign
from astroquery_mmoda.core import MmodaClass
from astroquery_mmoda.testing import FaultProxy, LocalDispatcher

HERE = Path(__file__).resolve().parent
FIELD = SkyCoord(257.0, -40.0, unit="deg")
PAYLOAD_ONLY = ("instrument", "product_type", "query_type", "query_status", "api", "scw_list")
KINDS = {"spectrum": ("get_spectrum", {}), "lightcurve": ("get_lightcurve", {"time_bin": 1000 * u.s}),
         "image": ("get_images", {}), "catalog": ("query_region", {})}


def scw_ids(count, per_revolution=50):
    """``count`` ScW ids, ``per_revolution`` pointings per revolution from revolution 100."""
    return [f"{100 + n // per_revolution:04d}{n % per_revolution + 1:04d}0010.001" for n in range(count)]


def campaign_params(client, kind):
    """The product name and the parameters every job shares, from the client's own payload."""
    method, extra = KINDS[kind]
    payload = getattr(client, method)(FIELD, start_time=Time("2003-03-15"), end_time=Time("2003-03-16"),
                                      scw_list=scw_ids(1), osa_version="OSA10.2", query_type="Dummy",
                                      get_query_payload=True, **extra)
    return payload["product_type"], {k: v for k, v in payload.items() if k not in PAYLOAD_ONLY}


@contextlib.contextmanager
def traced():
    """Yield a dict that gets ``peak_mb``: the peak of Python allocations inside the block."""
    out = {}
    gc.collect()
    tracemalloc.start()
    try:
        yield out
    finally:
        out["peak_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()


def floor_seconds(dispatcher, token, records, concurrency):
    """Wall time of sending the recorded requests straight to the dispatcher, answers read only."""
    def send(record):
        url = dispatcher.url.rstrip("/") + "/" + record.path.lstrip("/")
        with requests.Session() as session:
            answer = session.post(url, data=dict(record.params, token=token), timeout=600)
            answer.content  # noqa: B018 - read the whole answer
            return answer.status_code

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        statuses = list(pool.map(send, records))
    if any(status != 200 for status in statuses):
        raise RuntimeError(f"the floor's requests were not all answered 200: {statuses}")
    return time.perf_counter() - start


def bench_kind(dispatcher, proxy, token, kind, scws, per_job, concurrency, workdir):
    client = MmodaClass(server=proxy.url)
    client.cache_location = workdir / f"cache-{kind}"
    client.login(token)
    product, params = campaign_params(client, kind)

    def campaign():
        return Campaign(client, "isgri", product, params, scws, kind=kind, max_per_job=per_job,
                        query_type="Dummy", cache=False, max_concurrent=concurrency)

    campaign().run(timeout=3600, show_progress=False)  # warm-up: the dispatcher's first answers
    proxy.reset_counts()
    start = time.perf_counter()
    result = campaign().run(timeout=3600, show_progress=False)
    wall = time.perf_counter() - start
    if not result.complete:
        raise RuntimeError(f"{kind}: {result.summary}: {result.failures}")
    records = [r for r in proxy.requests if r.path.rstrip("/").endswith("run_analysis")]
    row = {"kind": kind, "jobs": len(result.plans), "scw": len(scws), "wall": wall,
           "analysis_requests": len(records), "other_requests": len(proxy.requests) - len(records)}
    row["floor"] = floor_seconds(dispatcher, token, records, concurrency)
    del result
    with traced() as memory:
        held = campaign().run(timeout=3600, show_progress=False)
    row["peak_campaign"] = memory["peak_mb"]
    del held
    one = campaign().requests()[:1]
    with traced() as memory:
        products = client.submit_many(one, query_type="Dummy", cache=False).wait(timeout=3600).results()
    row["peak_one_job"] = memory["peak_mb"]
    del products
    with traced() as memory:
        products = client.submit_many(campaign().requests(), query_type="Dummy",
                                      cache=False).wait(timeout=3600).results()
    row["peak_all_held"] = memory["peak_mb"]
    del products
    return row


def table(rows, *, concurrency):
    head = ("| kind | jobs | ScW | requests (analysis + other) | wall s | floor s | wall / floor | "
            "peak MB: campaign | one job | all jobs held |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['jobs']} | {r['scw']} | {r['analysis_requests']} + "
                     f"{r['other_requests']} | {r['wall']:.2f} | {r['floor']:.2f} | "
                     f"{r['wall'] / r['floor']:.2f} | {r['peak_campaign']:.1f} | {r['peak_one_job']:.1f} | "
                     f"{r['peak_all_held']:.1f} |")
    lines.append("")
    lines.append(f"Concurrency {concurrency}; Dummy-mode jobs on the local dispatcher; peak memory is "
                 "tracemalloc's (Python allocations), each measured in a run of its own.")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scw", type=int, default=1000, help="science windows (default 1000)")
    parser.add_argument("--per-job", type=int, default=50, help="ScW per job (default 50)")
    parser.add_argument("--concurrency", type=int, default=int(conf.max_concurrent),
                        help="requests in flight at once (default conf.max_concurrent)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated: " + ", ".join(KINDS))
    parser.add_argument("--out", type=Path, default=HERE / "campaign_results.md")
    args = parser.parse_args(argv)
    kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    unknown = set(kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds: {', '.join(sorted(unknown))}")
    log.setLevel(logging.WARNING)
    warnings.simplefilter("ignore", FITSFixedWarning)
    scws = scw_ids(args.scw)
    rows = []
    with tempfile.TemporaryDirectory(prefix="mmoda-campaign-bench-") as workdir, \
            LocalDispatcher(integral=True) as dispatcher, FaultProxy(dispatcher.url) as proxy, \
            conf.set_temp("poll_interval", 0.2):
        token = dispatcher.mint_token("general")
        for kind in kinds:
            rows.append(bench_kind(dispatcher, proxy, token, kind, scws, args.per_job, args.concurrency,
                                   Path(workdir)))
            print(f"{kind}: done in {rows[-1]['wall']:.1f} s", flush=True)
    text = table(rows, concurrency=args.concurrency)
    print(text)
    args.out.write_text("# Campaign benchmark\n\n" + text + "\n")


if __name__ == "__main__":
    main()
