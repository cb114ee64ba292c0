"""One measurement in a fresh interpreter; prints one JSON object on its last line of stdout.

Run by ``benchmarks/run.py`` with either the current interpreter (our client)
or the interpreter of the oda_api virtual environment.  Imports of the
clients happen inside the measurements only.

Usage: ``python _worker.py MODE JSON-ARGUMENTS``.
"""
import contextlib
import io
import json
import os
import resource
import secrets
import sys
import threading
import time


def maxrss_mb():
    """Peak resident memory of this process so far, in MiB.

    Linux's ``VmHWM``: ``ru_maxrss`` also counts the memory of the parent at
    the fork that started this interpreter (the runner, holding a large
    answer), so it hid the peak of a decode that stayed below it.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # kB on Linux


def reset_peak():
    """Start the peak (``VmHWM``) afresh from the memory in use now (Linux 4.0 and later)."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        pass


def count_requests():
    """Wrap requests.Session.send to count what this process sends; returns the list of paths."""
    import requests

    sent = RecordedRequests()
    original = requests.Session.send

    def send(session, request, **kwargs):
        if not sent.replaying:
            sent.append(request.path_url.split("?")[0])
            sent.prepared.append(request.copy())
        return original(session, request, **kwargs)

    requests.Session.send = send
    return sent


class RecordedRequests(list):
    """The paths of the requests sent (the list) and the requests themselves (``prepared``)."""

    def __init__(self):
        super().__init__()
        self.prepared = []
        self.replaying = False

    def replay(self, start=0):
        """Wall time of sending ``prepared[start:]`` again with a bare requests session.

        The same bytes on the wire (session id included) from the simplest
        possible client: what is left of a client's time beyond it is the
        client's own overhead.
        """
        import requests

        self.replaying = True
        try:
            begin = time.perf_counter()
            with requests.Session() as session:
                for request in self.prepared[start:]:
                    session.send(request.copy(), timeout=60).raise_for_status()
            return time.perf_counter() - begin
        finally:
            self.replaying = False


@contextlib.contextmanager
def quiet():
    """Silence prints and warnings of the client under test (oda_api prints)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield


def silence_logging():
    import logging

    logging.disable(logging.CRITICAL)


IMPORTS = {
    "ours-package": "import astroquery_mmoda",
    "ours-client": "from astroquery_mmoda import Mmoda",
    # Mmoda is a stand-in until first used: this is the import plus that first use
    "ours-client-used": "from astroquery_mmoda import Mmoda; Mmoda.server",
    "oda_api": "import oda_api.api",
    "floor": "import astroquery, astropy, keyring, jwt",
    # astroquery's BaseQuery lives in astroquery.query, which imports pyvo
    "floor-query": "import astroquery.query, astropy, keyring, jwt",
}


def mode_import(args):
    statement = IMPORTS[args["variant"]]
    start = time.perf_counter()
    with quiet():
        exec(statement, {})
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "maxrss_mb": maxrss_mb(), "modules": len(sys.modules)}


# -- our client -----------------------------------------------------------------------

def ours_client(url, token=None, cache_dir=None):
    from astroquery_mmoda.core import MmodaClass

    client = MmodaClass(server=url)
    if cache_dir:
        client.cache_location = cache_dir
    if token:
        client.login(token)
    return client


def first_hdulist(products):
    from astropy.io import fits

    for name in products:
        if isinstance(products[name], fits.HDUList):
            return products[name]
    raise RuntimeError("no FITS product")


def image_digest(hdul):
    """Shape and a checksum of the largest image, to check both clients decoded the same data."""
    import numpy as np

    arrays = [hdu.data for hdu in hdul if getattr(hdu, "data", None) is not None]
    data = max(arrays, key=lambda a: a.size)
    if data.dtype.names is not None:  # a table: its rows, numbers, flags and variable-length cells
        floats = [name for name in data.dtype.names if data.dtype[name].kind == "f"]
        digest = {"shape": [len(data)], "sum": float(sum(np.nansum(np.asarray(data[name][::7], float))
                                                         for name in floats))}
        for name in data.columns.names:
            column = data[name]
            if column.dtype.kind == "b":
                digest[f"{name}_true"] = int(np.count_nonzero(column))
            elif column.dtype.kind == "O":
                digest[f"{name}_cells"] = int(sum(len(cell) for cell in column))
        return digest
    return {"shape": list(data.shape), "sum": float(np.nansum(data[::97, ::89]))}


def mode_sync(args):
    """The first query of a fresh process (client imported already), then warm repeats."""
    sent = count_requests()
    silence_logging()
    repeats = int(args.get("repeats", 5))
    if args["client"] == "ours":
        from astroquery_mmoda.core import MmodaClass  # noqa: F401  (the import is measured apart)

        def query(client):
            return first_hdulist(client.get_product("empty", "numerical", query_type="Dummy", p=5,
                                                    cache=False))

        start, cpu = time.perf_counter(), time.process_time()
        client = ours_client(args["url"], args["token"], args.get("cache_dir"))
        hdul = query(client)
        first, first_cpu = time.perf_counter() - start, time.process_time() - cpu
        first_requests = list(sent)
        bare = sent.replay()
        warm, warm_cpu = [], []
        for _ in range(repeats):
            start, cpu = time.perf_counter(), time.process_time()
            query(client)
            warm.append(time.perf_counter() - start)
            warm_cpu.append(time.process_time() - cpu)
    else:
        from oda_api.api import DispatcherAPI

        def query(disp):
            data = disp.get_product(instrument="empty", product="numerical", product_type="Dummy",
                                    p=5, token=args["token"])
            return data._p_list[0].to_fits_hdu_list()

        with quiet():
            start, cpu = time.perf_counter(), time.process_time()
            disp = DispatcherAPI(url=args["url"], instrument="mock")
            hdul = query(disp)
            first, first_cpu = time.perf_counter() - start, time.process_time() - cpu
            first_requests = list(sent)
            bare = sent.replay()
            warm, warm_cpu = [], []
            for _ in range(repeats):
                start, cpu = time.perf_counter(), time.process_time()
                query(disp)
                warm.append(time.perf_counter() - start)
                warm_cpu.append(time.process_time() - cpu)
    warm.sort()
    warm_cpu.sort()
    return {"seconds": first, "bare_seconds": bare, "warm_seconds": warm[len(warm) // 2],
            "cpu_seconds": first_cpu,
            "warm_cpu_seconds": warm_cpu[len(warm_cpu) // 2], "requests": len(first_requests),
            "paths": first_requests, "warm_requests": (len(sent) - len(first_requests)) / repeats,
            "digest": image_digest(hdul)}


def mode_decode(args):
    sent = count_requests()
    silence_logging()
    import gc

    if args["client"] == "floor":
        return decode_floor(args, sent)
    if args["client"] in ("ours", "ours-cached"):
        # ours-cached: the default, the answer stored in an empty result cache as well
        cached = args["client"] == "ours-cached"
        client = ours_client(args["url"], cache_dir=args.get("cache_dir") if cached else None)
        gc.collect()
        reset_peak()
        before = maxrss_mb()
        start, cpu = time.perf_counter(), time.process_time()
        products = client.get_product("empty", "numerical", query_type="Dummy", validate=False,
                                      cache=cached)
        hdul = first_hdulist(products)
        seconds = time.perf_counter() - start
    else:
        from oda_api.api import DispatcherAPI

        with quiet():
            disp = DispatcherAPI(url=args["url"], instrument="mock")
            gc.collect()
            reset_peak()
            before = maxrss_mb()
            start, cpu = time.perf_counter(), time.process_time()
            data = disp.get_product(instrument="empty", product="numerical", product_type="Dummy")
            hdul = data._p_list[0].to_fits_hdu_list()
            seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = maxrss_mb()
    return {"seconds": seconds, "cpu_seconds": cpu, "rss_before_mb": before, "rss_peak_mb": peak,
            "rss_delta_mb": peak - before, "requests": len(sent), "digest": image_digest(hdul)}


def decode_floor(args, sent):
    """The fastest obvious composite, no checks: raw read, msgspec, pybase64, the standard unpickler.

    Not a client: it trusts the pickles (never do that with a server's data)
    and builds no HDUList; it shows what the libraries alone cost.
    """
    import gc
    import pickle

    import msgspec
    import numpy  # noqa: F401  (imported by both clients before their timed call too)
    import pybase64
    import requests
    from astropy.io import fits  # noqa: F401  (tables unpickle into astropy's FITS_rec)

    gc.collect()
    reset_peak()
    before = maxrss_mb()
    start, cpu = time.perf_counter(), time.process_time()
    with requests.get(f"{args['url']}/run_analysis", stream=True, timeout=600,
                      params={"instrument": "empty", "product_type": "numerical", "query_type": "Dummy",
                              "query_status": "new", "api": "True"}) as response:
        body = response.raw.read()
    data = msgspec.json.decode(body)
    del body
    arrays = [pickle.loads(pybase64.b64decode(unit["binarys"]))  # noqa: S301  (trusted here only)
              for product in data["products"]["numpy_data_product_list"]
              for unit in product["data_unit_list"] if unit.get("binarys")]
    seconds = time.perf_counter() - start
    cpu = time.process_time() - cpu
    peak = maxrss_mb()
    return {"seconds": seconds, "cpu_seconds": cpu, "rss_before_mb": before, "rss_peak_mb": peak,
            "rss_delta_mb": peak - before, "requests": len(sent), "digest": None,
            "arrays": len(arrays)}


def mode_cache(args):
    sent = count_requests()
    silence_logging()
    if args["client"] == "ours":
        client = ours_client(args["url"], args["token"], args["cache_dir"])
        call = lambda: first_hdulist(client.get_product(  # noqa: E731
            "empty", "numerical", query_type="Dummy", p=5, validate=args.get("validate", True)))
    else:
        from oda_api.api import DispatcherAPI

        disp = DispatcherAPI(url=args["url"], instrument="mock")

        def call():
            with quiet():
                data = disp.get_product(instrument="empty", product="numerical",
                                        product_type="Dummy", p=5, token=args["token"])
                return data._p_list[0].to_fits_hdu_list()
    if args.get("warm", True):
        call()  # the first call (fills our cache)
    before = len(sent)
    start = time.perf_counter()
    hdul = call()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "requests": len(sent) - before, "paths": sent[before:],
            "digest": image_digest(hdul)}


def mode_poll(args):
    """Wait for a job that never finishes; the runner's proxy counts the requests."""
    silence_logging()
    duration = float(args["duration"])
    if args["client"] == "ours":
        from astroquery_mmoda.exceptions import TimeoutError as JobTimeout

        client = ours_client(args["url"], args["token"], args.get("cache_dir"))
        job = client.submit("empty-async", "dummy", src_name=args["src_name"])
        try:
            job.wait(timeout=duration)
        except JobTimeout:
            pass
        return {"status": job.status}
    from oda_api.api import DispatcherAPI

    state = {}

    def wait_forever():
        with quiet():
            disp = DispatcherAPI(url=args["url"], instrument="mock", wait=True)
            state["disp"] = disp
            disp.get_product(instrument="empty-async", product="dummy", product_type="Real",
                             src_name=args["src_name"], token=args["token"])

    threading.Thread(target=wait_forever, daemon=True).start()
    time.sleep(duration)
    disp = state.get("disp")
    return {"status": getattr(disp, "query_status", None)}


def mode_many(args):
    silence_logging()
    sent = count_requests()
    count, prefix, limit = int(args["count"]), args["prefix"], float(args["limit"])
    # Random names: the dispatcher 1.3.3 gives one job id to names that are
    # anagrams of each other ("x-001" and "x-010").
    names = [f"{prefix}-{secrets.token_hex(8)}" for _ in range(count)]
    if args["client"] == "floor":
        return many_floor(args, names, sent)
    if args["client"] == "ours":
        client = ours_client(args["url"], args["token"], args.get("cache_dir"))
        start = time.perf_counter()
        group = client.submit_many([("empty-async", "dummy", {"src_name": name}) for name in names])
        with quiet():
            group.wait(timeout=limit, show_progress=False)
            results = group.results()
        seconds = time.perf_counter() - start
        failed = sum(isinstance(result, Exception) or result is None for result in results)
        return {"seconds": seconds, "requests": len(sent), "failed": failed}
    from oda_api.api import DispatcherAPI

    # The pattern of oda_api's AsynchronousAPI notebook: one DispatcherAPI per
    # job, then a loop that submits or polls each until all are complete.
    start = time.perf_counter()
    deadline = start + limit
    with quiet():
        base = DispatcherAPI(url=args["url"], instrument="mock")
        dispatchers, data = {}, {}
        rounds = 0
        while time.perf_counter() < deadline:
            rounds += 1
            for name in names:
                if name not in dispatchers:
                    dispatchers[name] = DispatcherAPI(url=base.url, instrument="mock", wait=False)
                disp = dispatchers[name]
                params = dict(instrument="empty-async", product="dummy", product_type="Real",
                              src_name=name, token=args["token"])
                if data.get(name) is None and not disp.is_failed:
                    if not disp.is_submitted:
                        data[name] = disp.get_product(**params)
                    else:
                        disp.poll()
                    if not disp.is_complete:
                        continue
                    data[name] = disp.get_product(**params)
            if all(disp.is_complete for disp in dispatchers.values()) and len(dispatchers) == count:
                break
    seconds = time.perf_counter() - start
    failed = sum(data.get(name) is None for name in names)
    return {"seconds": seconds, "requests": len(sent), "failed": failed, "rounds": rounds}


def many_floor(args, names, sent):
    """The server-bound floor: a bare client that sends the fewest requests a job needs.

    It submits every job, waits (not timed) until the runner's back-end has
    finished them all, then fetches each job's products with one request:
    two requests a job, and none of a client's bookkeeping.
    """
    import requests

    from astroquery_mmoda.jobs import new_session_id

    local = threading.local()

    def call(params):
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        answer = session.get(f"{args['url']}/run_analysis", params=params, timeout=60)
        answer.raise_for_status()
        return answer.json()

    base = {"instrument": "empty-async", "product_type": "dummy", "query_type": "Real", "api": "True",
            "token": args["token"]}
    workers = int(args.get("workers", 8))

    def submit(name):
        session_id = new_session_id()
        answer = call(dict(base, src_name=name, session_id=session_id, query_status="new"))
        return name, session_id, answer["job_monitor"]["job_id"]

    def fetch(job):
        name, session_id, job_id = job
        # "ready": the job is known to be finished, so its products come at once (1.3.3 answers
        # a "submitted" poll of a finished job with "ready" and no products)
        answer = call(dict(base, src_name=name, session_id=session_id, job_id=job_id,
                           query_status="ready"))
        return answer.get("query_status") == "done" and bool(answer.get("products"))

    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(workers) as pool:
        start = time.perf_counter()
        jobs = list(pool.map(submit, names))
        submitting = time.perf_counter() - start
        deadline = time.monotonic() + float(args["limit"])
        while not os.path.exists(args["done_flag"]) and time.monotonic() < deadline:
            time.sleep(0.01)  # the back-end at work: not timed
        start = time.perf_counter()
        done = list(pool.map(fetch, jobs))
        fetching = time.perf_counter() - start
    return {"seconds": submitting + fetching, "requests": len(sent), "failed": done.count(False)}


MODES = {"import": mode_import, "sync": mode_sync, "decode": mode_decode, "cache": mode_cache,
         "poll": mode_poll, "many": mode_many}


def main():
    mode, args = sys.argv[1], json.loads(sys.argv[2])
    result = MODES[mode](args)
    result["python"] = sys.version.split()[0]
    out = sys.__stdout__  # sys.stdout may be redirected by a thread still running
    out.write("\n" + json.dumps(result) + "\n")
    out.flush()
    os._exit(0)  # do not wait for oda_api's waiting thread


if __name__ == "__main__":
    main()
