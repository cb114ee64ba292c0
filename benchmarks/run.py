"""Benchmarks of astroquery_mmoda against oda_api 1.3.5, on one local dispatcher.

Usage (from the repository root, in the environment where astroquery_mmoda is
installed)::

    python benchmarks/run.py            # full run, writes benchmarks/results.md
    python benchmarks/run.py --quick    # a short smoke run (fewer repetitions)

See benchmarks/README.md for what is measured and how.
"""
import argparse
import contextlib
import datetime
import fcntl
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKER = HERE / "_worker.py"
MAKE_PAYLOAD = HERE / "_make_payload.py"
ODA_API_VERSION = "1.3.5"
IMAGE_SIDE = 2550  # 2550² float64 pixels: 52 MB of data, a 69 MB answer
TABLE_ROWS = 200_000  # ~10 MB of rows and variable-length cells
# The large answers decoded: (kind for _make_payload.py, its size, the results key).
DECODE_PAYLOADS = (("image", IMAGE_SIDE, "decode"), ("fits-image", IMAGE_SIDE, "decode_fits_image"),
                   ("table", TABLE_ROWS, "decode_table"))
SECTIONS = ("imports", "sync", "decode", "cache", "polling", "many")

TARGETS = {
    "import_vs_oda": 0.5, "import_vs_floor": 1.1, "sync": 0.3, "sync_first": 0.4, "decode_speed": 0.1,
    "decode_memory": 2.0, "cache_seconds": 0.020, "polls_per_minute": 12, "cache_overhead": 1.2,
}


# -- the oda_api environment ----------------------------------------------------------

def default_oda_venv():
    """``~/.cache/astroquery_mmoda/oda-api-1.3.5-pyXY`` (``$XDG_CACHE_HOME`` respected)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    py = f"py{sys.version_info.major}{sys.version_info.minor}"
    return cache / "astroquery_mmoda" / f"oda-api-{ODA_API_VERSION}-{py}"


def provision_oda_api(venv_dir):
    """Install oda-api==1.3.5 into its own virtual environment (once); returns its python."""
    python = venv_dir / "bin" / "python"
    marker = venv_dir / ".provisioned"
    if marker.exists() and marker.read_text().strip() == ODA_API_VERSION:
        return python
    venv_dir.parent.mkdir(parents=True, exist_ok=True)
    with open(venv_dir.with_name(venv_dir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text().strip() == ODA_API_VERSION:
            return python
        if venv_dir.exists():
            shutil.rmtree(venv_dir)
        log(f"installing oda-api=={ODA_API_VERSION} into its own environment (about a minute)")
        base = getattr(sys, "_base_executable", sys.executable)
        for step in ([base, "-m", "venv", str(venv_dir)],
                     [str(python), "-m", "pip", "install", "--disable-pip-version-check",
                      "--no-input", "-q", f"oda-api=={ODA_API_VERSION}"],
                     [str(python), "-W", "ignore", "-c", "import oda_api.api"]):
            done = subprocess.run(step, capture_output=True, text=True, timeout=1200,
                                  stdin=subprocess.DEVNULL)
            if done.returncode != 0:
                raise SystemExit(f"provisioning oda-api failed at {' '.join(step[:4])}:\n"
                                 f"{(done.stdout + done.stderr)[-4000:]}")
        marker.write_text(ODA_API_VERSION)
    return python


# -- helpers --------------------------------------------------------------------------

def log(text):
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


PYCACHE = {}


def clean_env():
    """The environment of the measured interpreters.

    Byte code is cached (under the run's temporary folder, for both clients
    alike): an installed package has its ``.pyc`` files, and the warm-up runs
    write them.
    """
    env = {key: value for key, value in os.environ.items()
           if key.lower() not in ("http_proxy", "https_proxy", "all_proxy", "oda_token",
                                  "pythondontwritebytecode")}
    env["PYTHONWARNINGS"] = "ignore"
    env["MPLBACKEND"] = "agg"
    if PYCACHE.get("prefix"):
        env["PYTHONPYCACHEPREFIX"] = PYCACHE["prefix"]
    return env


def run_worker(python, mode, args, *, timeout=600):
    """Run one measurement in a fresh interpreter; returns its JSON result."""
    command = [str(python), str(WORKER), mode, json.dumps(args)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                          env=clean_env(), stdin=subprocess.DEVNULL, cwd=tempfile.gettempdir())
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"worker {mode} {args.get('client', args.get('variant'))} failed "
                           f"({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    return json.loads(lines[-1])


def median(values):
    return statistics.median(values) if values else float("nan")


def interleaved(repeat, variants):
    """``(round, variant)`` pairs, the variants' order rotating each round."""
    for index in range(repeat):
        shift = index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            yield index, variant


def package_versions(python, names):
    code = ("import json, importlib.metadata as m\nout = {}\nfor n in %r:\n"
            "    try: out[n] = m.version(n)\n    except Exception: out[n] = None\n"
            "print(json.dumps(out))") % (list(names),)
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60,
                          env=clean_env())
    return json.loads(done.stdout.strip().splitlines()[-1])


def machine():
    cpu = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    memory = "?"
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = f"{int(line.split()[1]) / 1024 ** 2:.0f} GiB"
                break
    return {"cpu": cpu, "cores": os.cpu_count(), "memory": memory,
            "system": f"{platform.system()} {platform.release()}",
            "python": platform.python_version()}


# -- a replay server for the large product --------------------------------------------

class ReplayServer:
    """Answers every run_analysis request with one stored body (stdlib, loopback)."""

    def __init__(self, body, parameter_names):
        self.body = body
        self.names = json.dumps(parameter_names).encode()
        self.counts = {}
        self._lock = threading.Lock()
        replay = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                path = self.path.split("?")[0].strip("/")
                with replay._lock:
                    replay.counts[path] = replay.counts.get(path, 0) + 1
                if path.endswith("run_analysis"):
                    body, kind = replay.body, "application/json"
                elif path.endswith("api/par-names"):
                    body, kind = replay.names, "application/json"
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()


# -- the measurements ------------------------------------------------------------------

class Bench:
    def __init__(self, options, ours, oda, dispatcher, workdir):
        self.options = options
        self.ours = ours
        self.oda = oda
        self.dispatcher = dispatcher
        self.workdir = workdir
        self.token = dispatcher.mint_token("general")
        self.results = {}

    def python(self, client):
        return self.oda if client == "oda_api" else self.ours

    def cache_dir(self, name):
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))
        return str(path)

    def imports(self):
        variants = ["ours-package", "ours-client", "ours-client-used", "oda_api", "floor",
                    "floor-query"]
        for variant in variants:  # warm the file system cache and .pyc files
            run_worker(self.python(variant), "import", {"variant": variant})
        samples = {variant: [] for variant in variants}
        for _, variant in interleaved(self.options.repeat, variants):
            samples[variant].append(run_worker(self.python(variant), "import", {"variant": variant}))
        self.results["import"] = {
            variant: {"seconds": median([s["seconds"] for s in runs]),
                      "maxrss_mb": median([s["maxrss_mb"] for s in runs]),
                      "modules": median([s["modules"] for s in runs]), "n": len(runs)}
            for variant, runs in samples.items()}

    def server_time(self, repeat=15):
        """Median time of one raw run_analysis request for the sync query (the server's own time).

        Each request has a new connection and a new session id, as the first
        request of a client in a fresh process has.
        """
        import requests

        from astroquery_mmoda.jobs import new_session_id

        params = dict(instrument="empty", product_type="numerical", query_type="Dummy", p=5,
                      api="True", query_status="new", token=self.token)
        times = []
        for index in range(repeat + 3):
            with requests.Session() as session:
                start = time.perf_counter()
                answer = session.get(f"{self.dispatcher.url}/run_analysis",
                                     params=dict(params, session_id=new_session_id()), timeout=60)
                elapsed = time.perf_counter() - start
            answer.raise_for_status()
            if index >= 3:
                times.append(elapsed)
        return median(times), answer

    def sync(self):
        # ours-described: the instrument's description already in the cache folder (from an
        # earlier session, written by the warm-up run), as for every first call but the very first
        samples = {"ours": [], "ours-described": [], "oda_api": []}
        self.described_dir = self.cache_dir("described")
        for client in samples:  # warm-up
            run_worker(self.python(client), "sync", self.sync_args(client))
        server, _ = self.server_time()
        for _, client in interleaved(self.options.repeat, list(samples)):
            samples[client].append(run_worker(self.python(client), "sync", self.sync_args(client)))
        server_after, _ = self.server_time()
        server = (server + server_after) / 2
        self.results["sync"] = {"server_seconds": server}
        for client, runs in samples.items():
            first = median([s["seconds"] for s in runs])
            warm = median([s["warm_seconds"] for s in runs])
            self.results["sync"][client] = {
                "seconds": first, "net_seconds": first - server, "warm_seconds": warm,
                "paired_net_seconds": median([s["seconds"] - s["bare_seconds"] for s in runs]),
                "bare_seconds": median([s["bare_seconds"] for s in runs]),
                "cpu_seconds": median([s["cpu_seconds"] for s in runs]),
                "warm_cpu_seconds": median([s["warm_cpu_seconds"] for s in runs]),
                "warm_net_seconds": warm - server, "requests": runs[-1]["requests"],
                "warm_requests": runs[-1]["warm_requests"], "paths": runs[-1]["paths"],
                "digest": runs[-1]["digest"], "n": len(runs)}

    def sync_args(self, client):
        args = {"client": client, "url": self.dispatcher.url, "token": self.token}
        if client == "ours":
            args["cache_dir"] = self.cache_dir("sync")
        elif client == "ours-described":
            args.update(client="ours", cache_dir=self.described_dir)
        return args

    def large_payload(self, kind="image", size=IMAGE_SIDE):
        """A large answer (by default the ~69 MB image), encoded by the dispatcher's own oda_api."""
        _, answer = self.server_time(repeat=0)
        template = answer.json()
        template["products"].pop("api_code", None)
        for holder in (template["products"].get("analysis_parameters") or {},):
            holder.pop("token", None)
        template_path = Path(self.workdir) / "template.json"
        template_path.write_text(json.dumps(template))
        output = Path(self.workdir) / "large.json"
        python = Path(self.dispatcher.venv_dir) / "bin" / "python"
        done = subprocess.run([str(python), "-W", "ignore", str(MAKE_PAYLOAD), str(template_path),
                               str(output), str(size), kind], capture_output=True, text=True,
                              timeout=900, env=clean_env())
        if done.returncode != 0:
            raise RuntimeError(f"the payload could not be made:\n{done.stderr[-3000:]}")
        info = json.loads(done.stdout.strip().splitlines()[-1])
        body = output.read_bytes()
        output.unlink()
        info["body_bytes"] = len(body)
        return body, info

    def decode(self):
        for kind, size, key in DECODE_PAYLOADS:
            log(f"decode: {kind} ...")
            self.results[key] = self.decode_one(kind, size)

    def decode_one(self, kind, size):
        body, info = self.large_payload(kind, size)
        names = ["src_name", "RA", "DEC", "T1", "T2", "token", "p", "sb", "ang", "ang_deg", "energ"]
        samples = {"ours": [], "ours-cached": [], "floor": [], "oda_api": []}
        failures = {}
        with ReplayServer(body, names) as replay:
            del body
            counts = {"ours": self.options.repeat_decode, "ours-cached": self.options.repeat_decode,
                      "floor": self.options.repeat_decode, "oda_api": self.options.repeat_slow}
            for index, client in interleaved(max(counts.values()), list(samples)):
                if len(samples[client]) < counts[client] and client not in failures:
                    args = {"client": client, "url": replay.url}
                    if client == "ours-cached":  # an empty cache each time: a miss, then a store
                        args["cache_dir"] = self.cache_dir("decode")
                    try:
                        samples[client].append(run_worker(self.python(client), "decode", args))
                    except RuntimeError as exc:  # e.g. oda_api on variable-length columns
                        failures[client] = str(exc)[-1500:]
        result = {"payload": info}
        for client, runs in samples.items():
            if not runs:
                result[client] = {"failed": failures.get(client, "no run"), "seconds": float("nan"),
                                  "cpu_seconds": float("nan"), "rss_delta_mb": float("nan"),
                                  "digest": None, "n": 0}
                continue
            result[client] = {"seconds": median([s["seconds"] for s in runs]),
                              "cpu_seconds": median([s["cpu_seconds"] for s in runs]),
                              "rss_delta_mb": median([s["rss_delta_mb"] for s in runs]),
                              "rss_peak_mb": median([s["rss_peak_mb"] for s in runs]),
                              "digest": runs[-1]["digest"], "requests": runs[-1]["requests"],
                              "n": len(runs)}
        return result

    def cache(self):
        samples = {"ours": [], "ours-new-process": [], "ours-new-process-unvalidated": [],
                   "oda_api": []}
        for _, variant in interleaved(self.options.repeat, list(samples)):
            client = "oda_api" if variant == "oda_api" else "ours"
            args = {"client": client, "url": self.dispatcher.url, "token": self.token}
            if variant.startswith("ours-new-process"):
                # a fresh interpreter with the cache of an earlier one
                args["cache_dir"] = self.cache_dir("cache")
                run_worker(self.ours, "cache", dict(args, warm=False))
                args["warm"] = False
                args["validate"] = not variant.endswith("unvalidated")
            elif client == "ours":
                args["cache_dir"] = self.cache_dir("cache")
            samples[variant].append(run_worker(self.python(client), "cache", args))
        self.results["cache"] = {
            variant: {"seconds": median([s["seconds"] for s in runs]),
                      "requests": max(s["requests"] for s in runs), "paths": runs[-1]["paths"],
                      "n": len(runs)}
            for variant, runs in samples.items()}

    def polling(self):
        from astroquery_mmoda.testing.fault_proxy import FaultProxy

        duration = self.options.poll_seconds
        self.dispatcher.set_backend_status(None)
        stamp = time.time_ns()
        with FaultProxy(self.dispatcher.url) as ours_proxy, \
                FaultProxy(self.dispatcher.url) as oda_proxy:
            jobs = []
            for client, proxy in (("ours", ours_proxy), ("oda_api", oda_proxy)):
                args = {"client": client, "url": proxy.url, "token": self.token,
                        "duration": duration, "src_name": f"poll-{client}-{stamp}"}
                if client == "ours":
                    args["cache_dir"] = self.cache_dir("poll")
                jobs.append((client, proxy, args))
            with ThreadPoolExecutor(2) as pool:
                futures = [pool.submit(run_worker, self.python(client), "poll", args,
                                       timeout=duration + 120) for client, _, args in jobs]
                statuses = [future.result()["status"] for future in futures]
            result = {"duration": duration}
            for (client, proxy, _), status in zip(jobs, statuses):
                records = [r for r in proxy.requests if r.path == "run_analysis"]
                start = records[0].time if records else 0.0
                first = sum(1 for r in records if r.time - start < 60)
                later = [r for r in records if r.time - start >= 60]
                minutes_after = max((duration - 60) / 60.0, 1e-9)
                result[client] = {"status": status, "run_analysis": len(records),
                                  "all_requests": len(proxy.requests), "first_minute": first,
                                  "after_first_minute": len(later),
                                  "per_minute_after": len(later) / minutes_after}
        self.results["polling"] = result

    def many(self):
        from astroquery_mmoda.testing.fault_proxy import FaultProxy

        count = self.options.jobs
        # floor: a bare client, the fewest requests, the wait for the back-end not timed
        samples = {"ours": [], "oda_api": [], "floor": []}
        for index, client in interleaved(self.options.repeat_slow, list(samples)):
            self.dispatcher.set_backend_status(None)
            prefix = f"many-{client}-{index}-{time.time_ns()}"
            done_flag = Path(self.cache_dir("many-done")) / "done"
            with FaultProxy(self.dispatcher.url) as proxy:
                finisher = threading.Thread(target=self.finish_when_submitted,
                                            args=(proxy, count, done_flag), daemon=True)
                finisher.start()
                args = {"client": client, "url": proxy.url, "token": self.token, "count": count,
                        "prefix": prefix, "limit": 600, "done_flag": str(done_flag)}
                if client == "ours":
                    args["cache_dir"] = self.cache_dir("many")
                result = run_worker(self.python(client), "many", args, timeout=900)
                finisher.join(60)
                result["server_requests"] = len(proxy.requests)
                result["server_run_analysis"] = proxy.count(path="run_analysis")
                samples[client].append(result)
            self.dispatcher.set_backend_status(None)
        self.results["many"] = {"jobs": count}
        for client, runs in samples.items():
            self.results["many"][client] = {
                "seconds": median([s["seconds"] for s in runs]),
                "requests": median([s["server_requests"] for s in runs]),
                "run_analysis": median([s["server_run_analysis"] for s in runs]),
                "failed": max(s["failed"] for s in runs), "n": len(runs)}

    def finish_when_submitted(self, proxy, count, done_flag, limit=600.0):
        """The back-end: once all jobs are submitted, finish every one of them (then touch ``done_flag``)."""
        deadline = time.monotonic() + limit
        jobs = set()
        while time.monotonic() < deadline:
            jobs = {(r.answer_job_id, r.params.get("session_id")) for r in proxy.requests
                    if r.path == "run_analysis" and r.query_status == "new" and r.answer_job_id}
            if len(jobs) >= count:
                break
            time.sleep(0.05)
        self.dispatcher.set_backend_status("done")
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda job: self.dispatcher.call_back(
                job[0], job[1], action="done", node_id="node_final", message="done"), jobs))
        done_flag.touch()


# -- the report ---------------------------------------------------------------------------

def ratio(ours, theirs):
    return ours / theirs if theirs else float("nan")


def fmt_s(seconds):
    if seconds != seconds:
        return "–"
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


def report(results, info):
    rows = []

    def row(metric, ours, theirs, value, target, met):
        verdict = "–" if target == "(info)" else "yes" if met else "**no**"
        rows.append(f"| {metric} | {ours} | {theirs} | {value} | {target} | {verdict} |")

    imp = results["import"]
    client, oda, floor = imp["ours-client"], imp["oda_api"], imp["floor"]
    r_oda, r_floor = ratio(client["seconds"], oda["seconds"]), ratio(client["seconds"], floor["seconds"])
    row("import time, `from astroquery_mmoda import Mmoda`", fmt_s(client["seconds"]),
        fmt_s(oda["seconds"]), f"{r_oda:.2f}", f"≤ {TARGETS['import_vs_oda']}× oda_api",
        r_oda <= TARGETS["import_vs_oda"])
    row("import time vs. the floor (`import astroquery, astropy, keyring, jwt`)",
        fmt_s(client["seconds"]), f"floor {fmt_s(floor['seconds'])}", f"{r_floor:.2f} (vs floor)",
        f"≤ {TARGETS['import_vs_floor']}× floor", r_floor <= TARGETS["import_vs_floor"])
    m_oda, m_floor = ratio(client["maxrss_mb"], oda["maxrss_mb"]), ratio(client["maxrss_mb"],
                                                                         floor["maxrss_mb"])
    row("peak RSS after the import", f"{client['maxrss_mb']:.0f} MiB", f"{oda['maxrss_mb']:.0f} MiB",
        f"{m_oda:.2f}", f"≤ {TARGETS['import_vs_oda']}× oda_api, ≤ {TARGETS['import_vs_floor']}× "
        f"floor ({floor['maxrss_mb']:.0f} MiB: {m_floor:.2f})",
        m_oda <= TARGETS["import_vs_oda"] and m_floor <= TARGETS["import_vs_floor"])
    query_floor = imp["floor-query"]
    r_qfloor = ratio(client["seconds"], query_floor["seconds"])
    row("import time vs. the floor with astroquery's BaseQuery (`import astroquery.query, "
        "astropy, keyring, jwt`)", fmt_s(client["seconds"]), f"floor {fmt_s(query_floor['seconds'])}",
        f"{r_qfloor:.2f} (vs floor)", "(info)", True)
    used = imp.get("ours-client-used")
    if used:
        row("import time plus the first use of `Mmoda` (which imports the client: "
            "`from astroquery_mmoda import Mmoda; Mmoda.server`)", fmt_s(used["seconds"]),
            fmt_s(oda["seconds"]), f"{ratio(used['seconds'], oda['seconds']):.2f}", "(info)", True)
    package = imp["ours-package"]
    row("import time, `import astroquery_mmoda` (package only)", fmt_s(package["seconds"]),
        fmt_s(oda["seconds"]), f"{ratio(package['seconds'], oda['seconds']):.2f}", "(info)", True)

    sync = results["sync"]
    if "paired_net_seconds" in sync["ours"]:
        r_paired = ratio(sync["ours"]["paired_net_seconds"], sync["oda_api"]["paired_net_seconds"])
        row("sync query `empty/numerical`, first in a fresh process (import excluded): the client's "
            "overhead, its time minus a bare replay of its own requests right after it "
            "(replay time; HTTP requests)",
            f"{fmt_s(sync['ours']['paired_net_seconds'])} ({fmt_s(sync['ours']['bare_seconds'])}; "
            f"{sync['ours']['requests']})",
            f"{fmt_s(sync['oda_api']['paired_net_seconds'])} ({fmt_s(sync['oda_api']['bare_seconds'])}; "
            f"{sync['oda_api']['requests']})",
            f"{r_paired:.2f}", f"≤ {TARGETS['sync_first']}", r_paired <= TARGETS["sync_first"])
        described = sync.get("ours-described")
        if described and described.get("n"):
            r_described = ratio(described["paired_net_seconds"], sync["oda_api"]["paired_net_seconds"])
            row("the same, the instrument's description already in the cache folder (every first call "
                "of a process but the very first one: no meta-data request)",
                f"{fmt_s(described['paired_net_seconds'])} ({fmt_s(described['bare_seconds'])}; "
                f"{described['requests']})",
                f"{fmt_s(sync['oda_api']['paired_net_seconds'])} ({fmt_s(sync['oda_api']['bare_seconds'])}; "
                f"{sync['oda_api']['requests']})",
                f"{r_described:.2f}", f"≤ {TARGETS['sync_first']}", r_described <= TARGETS["sync_first"])
    r_sync = ratio(sync["ours"]["net_seconds"], sync["oda_api"]["net_seconds"])
    row(f"sync query `empty/numerical`, first in a fresh process (import excluded), minus the "
        f"server's {fmt_s(sync['server_seconds'])} (HTTP requests)",
        f"{fmt_s(sync['ours']['net_seconds'])} ({sync['ours']['requests']})",
        f"{fmt_s(sync['oda_api']['net_seconds'])} ({sync['oda_api']['requests']})",
        f"{r_sync:.2f}", f"≤ {TARGETS['sync']}", r_sync <= TARGETS["sync"])
    r_warm = ratio(sync["ours"]["warm_net_seconds"], sync["oda_api"]["warm_net_seconds"])
    row("sync query, repeated in the same process (no cache), minus the server's time "
        "(HTTP requests)",
        f"{fmt_s(sync['ours']['warm_net_seconds'])} ({sync['ours']['warm_requests']:g})",
        f"{fmt_s(sync['oda_api']['warm_net_seconds'])} ({sync['oda_api']['warm_requests']:g})",
        f"{r_warm:.2f}", f"≤ {TARGETS['sync']}", r_warm <= TARGETS["sync"])

    r_cpu = ratio(sync["ours"]["cpu_seconds"], sync["oda_api"]["cpu_seconds"])
    row("sync query, first in a fresh process: client CPU time (the server excluded exactly)",
        fmt_s(sync["ours"]["cpu_seconds"]), fmt_s(sync["oda_api"]["cpu_seconds"]), f"{r_cpu:.2f}",
        "(info)", True)
    r_wcpu = ratio(sync["ours"]["warm_cpu_seconds"], sync["oda_api"]["warm_cpu_seconds"])
    row("sync query, repeated: client CPU time", fmt_s(sync["ours"]["warm_cpu_seconds"]),
        fmt_s(sync["oda_api"]["warm_cpu_seconds"]), f"{r_wcpu:.2f}", "(info)", True)

    dec = results["decode"]
    payload_mb = dec["payload"]["body_bytes"] / 1e6
    r_dec = ratio(dec["ours"]["seconds"], dec["oda_api"]["seconds"])
    row(f"decode a {payload_mb:.0f} MB answer ({dec['payload']['data_bytes'] / 1e6:.0f} MB float64 "
        "image) to an HDUList: time", fmt_s(dec["ours"]["seconds"]), fmt_s(dec["oda_api"]["seconds"]),
        f"{r_dec:.3f} ({1 / r_dec:.0f}× faster)" if r_dec else "–", "≥ 10× faster (≤ 0.1)",
        r_dec <= TARGETS["decode_speed"])
    row("decode: client CPU time", fmt_s(dec["ours"]["cpu_seconds"]),
        fmt_s(dec["oda_api"]["cpu_seconds"]),
        f"{ratio(dec['ours']['cpu_seconds'], dec['oda_api']['cpu_seconds']):.3f}", "(info)", True)
    mem_ours = dec["ours"]["rss_delta_mb"] * 1024 ** 2 / 1e6 / payload_mb
    mem_oda = dec["oda_api"]["rss_delta_mb"] * 1024 ** 2 / 1e6 / payload_mb
    row("decode: peak memory (RSS increase) / answer size",
        f"{dec['ours']['rss_delta_mb']:.0f} MiB ({mem_ours:.1f}×)",
        f"{dec['oda_api']['rss_delta_mb']:.0f} MiB ({mem_oda:.1f}×)",
        f"{ratio(dec['ours']['rss_delta_mb'], dec['oda_api']['rss_delta_mb']):.2f}",
        f"≤ {TARGETS['decode_memory']:.0f}× the payload", mem_ours <= TARGETS["decode_memory"])
    floor = dec.get("floor")
    if floor and floor.get("n"):
        mem_floor = floor["rss_delta_mb"] * 1024 ** 2 / 1e6 / payload_mb
        row("decode floor: the fastest obvious composite, no checks (raw read, msgspec, pybase64, "
            "the standard unpickler; no HDUList): time (peak memory / answer), ours / floor",
            f"{fmt_s(floor['seconds'])} ({mem_floor:.1f}×)", "–",
            f"{ratio(dec['ours']['seconds'], floor['seconds']):.2f} (ours vs floor)", "(info)", True)
    cached = dec.get("ours-cached")
    if cached and cached.get("n"):
        r_cached = ratio(cached["seconds"], dec["ours"]["seconds"])
        mem_cached = cached["rss_delta_mb"] * 1024 ** 2 / 1e6 / payload_mb
        row("decode with the result cache on (the default; the answer stored too): time "
            "(peak memory / answer), ratio to the cache off",
            f"{fmt_s(cached['seconds'])} ({mem_cached:.1f}×)", fmt_s(dec["oda_api"]["seconds"]),
            f"{r_cached:.2f} (vs cache off)", f"≤ {TARGETS['cache_overhead']:.1f}× the cache off",
            r_cached <= TARGETS["cache_overhead"])

    for key, label in (("decode_fits_image", "image read from a FITS file (big-endian)"),
                       ("decode_table", "binary table with a variable-length column")):
        if key not in results:
            continue
        other = results[key]
        mb = other["payload"]["body_bytes"] / 1e6
        r_other = ratio(other["ours"]["seconds"], other["oda_api"]["seconds"])
        theirs = ("failed" if other["oda_api"].get("failed") else fmt_s(other["oda_api"]["seconds"]))
        mem_other = other["ours"]["rss_delta_mb"] * 1.048576 / mb
        table = key == "decode_table"  # the targets: as fast as oda_api, peak ≤ 2×
        row(f"decode a {mb:.0f} MB answer ({other['payload']['data_bytes'] / 1e6:.0f} MB {label}): "
            f"time (peak memory / answer)",
            f"{fmt_s(other['ours']['seconds'])} ({mem_other:.2f}×)",
            f"{theirs}" + ("" if other["oda_api"].get("failed") else
                           f" ({other['oda_api']['rss_delta_mb'] * 1.048576 / mb:.1f}×)"),
            f"{r_other:.3f} ({1 / r_other:.0f}× faster)" if r_other == r_other and r_other else "–",
            f"≤ 1 (as fast), peak ≤ {TARGETS['decode_memory']:.0f}× the payload" if table else "(info)",
            (r_other <= 1 and mem_other <= TARGETS["decode_memory"]) if table else True)
        floor = other.get("floor")
        if table and floor and floor.get("n"):
            row("decode floor for the table (as above): time (peak memory / answer), ours / floor",
                f"{fmt_s(floor['seconds'])} ({floor['rss_delta_mb'] * 1.048576 / mb:.1f}×)", "–",
                f"{ratio(other['ours']['seconds'], floor['seconds']):.2f} (ours vs floor)", "(info)", True)

    cache = results["cache"]
    hit = cache["ours"]
    row("repeated identical query: second call (HTTP requests)",
        f"{fmt_s(hit['seconds'])} ({hit['requests']})",
        f"{fmt_s(cache['oda_api']['seconds'])} ({cache['oda_api']['requests']})",
        f"{ratio(hit['seconds'], cache['oda_api']['seconds']):.3f}",
        "< 20 ms, 0 requests", hit["seconds"] < TARGETS["cache_seconds"] and hit["requests"] == 0)
    for variant, label in (("ours-new-process", "cache hit in a new process, validate=True"),
                           ("ours-new-process-unvalidated",
                            "cache hit in a new process, validate=False")):
        entry = cache[variant]
        row(f"{label} (HTTP requests)", f"{fmt_s(entry['seconds'])} ({entry['requests']})", "–",
            "–", "(info)", True)

    poll = results["polling"]
    ours_after, oda_after = poll["ours"]["per_minute_after"], poll["oda_api"]["per_minute_after"]
    row(f"polling a job that stays `submitted` {poll['duration']:.0f} s: run_analysis requests "
        "in the first minute", str(poll["ours"]["first_minute"]), str(poll["oda_api"]["first_minute"]),
        f"{ratio(poll['ours']['first_minute'], poll['oda_api']['first_minute']):.2f}", "(info)", True)
    row("polling: requests per minute after the first minute", f"{ours_after:.1f}",
        f"{oda_after:.1f}", f"{ratio(ours_after, oda_after):.2f}",
        f"≤ {TARGETS['polls_per_minute']}/min", ours_after <= TARGETS["polls_per_minute"])

    many = results["many"]
    row(f"{many['jobs']} concurrent async jobs: wall time (failed jobs)",
        f"{fmt_s(many['ours']['seconds'])} ({many['ours']['failed']})",
        f"{fmt_s(many['oda_api']['seconds'])} ({many['oda_api']['failed']})",
        f"{ratio(many['ours']['seconds'], many['oda_api']['seconds']):.2f}", "(info)", True)
    row(f"{many['jobs']} concurrent async jobs: HTTP requests received by the dispatcher",
        f"{many['ours']['requests']:.0f}", f"{many['oda_api']['requests']:.0f}",
        f"{ratio(many['ours']['requests'], many['oda_api']['requests']):.2f}", "(info)", True)
    floor = many.get("floor")
    if floor and floor.get("n"):
        row(f"{many['jobs']} async jobs, the server-bound floor (a bare client: all submitted, then "
            "one fetch each once the back-end has finished them, that wait not timed): time "
            "(HTTP requests received), ours' requests / the floor's",
            f"{fmt_s(floor['seconds'])} ({floor['requests']:.0f}; failed {floor['failed']})", "–",
            f"{ratio(many['ours']['requests'], floor['requests']):.2f} (ours vs floor)", "(info)", True)

    same = (results["decode"]["ours"]["digest"] == results["decode"]["oda_api"]["digest"]
            and results["sync"]["ours"]["digest"] == results["sync"]["oda_api"]["digest"])
    versions_ours, versions_oda = info["versions_ours"], info["versions_oda"]
    lines = [
        "# Benchmarks: astroquery_mmoda vs. oda_api",
        "",
        f"Produced by `python benchmarks/run.py` on {info['date']} (method: README.md beside this "
        "file).",
        "",
        f"* Machine: {info['machine']['cpu']}, {info['machine']['cores']} cores, "
        f"{info['machine']['memory']} RAM, {info['machine']['system']}",
        f"* Python {info['machine']['python']}; dispatcher: cdci-data-analysis "
        f"{info['dispatcher_version']} on 127.0.0.1",
        f"* astroquery_mmoda {versions_ours.get('astroquery_mmoda')} (astroquery "
        f"{versions_ours.get('astroquery')}, astropy {versions_ours.get('astropy')}, numpy "
        f"{versions_ours.get('numpy')}, requests {versions_ours.get('requests')})",
        f"* oda_api {versions_oda.get('oda-api')} (astropy {versions_oda.get('astropy')}, numpy "
        f"{versions_oda.get('numpy')}, requests {versions_oda.get('requests')})",
        f"* Repetitions (medians): {info['repeat']} for imports, sync query and cache; "
        f"{info['repeat_decode']} (ours) and {info['repeat_slow']} (oda_api) for the large "
        f"answer; {info['repeat_slow']} for {many['jobs']} jobs; one {poll['duration']:.0f} s "
        "run for polling.",
        f"* Both clients decoded identical data: {'yes' if same else '**no**'}"
        + "".join(f"; {key.replace('_', ' ')}: "
                  + ("yes" if results[key]["ours"]["digest"] == results[key]["oda_api"]["digest"]
                     else "oda_api failed" if results[key]["oda_api"].get("failed") else "**no**")
                  for key in ("decode_fits_image", "decode_table") if key in results) + ".",
        *([f"* Sections measured again on {info['remeasured']['date']} (`--only "
           f"{','.join(info['remeasured']['sections'])}`): "
           f"{', '.join(info['remeasured']['sections'])}; the others are from the full run of "
           f"{info['date']}."] if info.get("remeasured") else []),
        "",
        "| metric | astroquery_mmoda | oda_api 1.3.5 | ratio ours/oda_api | target | met? |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
    ]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 2 repetitions, 20 s of polling, 20 jobs")
    parser.add_argument("--server", default="1.3.3",
                        help="the local dispatcher to measure against: 1.3.3 (default) or current "
                             "(needs MMODA_DISPATCHER_SOURCES)")
    parser.add_argument("--output", default=None,
                        help="the Markdown report (default: benchmarks/results.md, or "
                             "results-current.md with --server current)")
    parser.add_argument("--oda-venv", default=None,
                        help="virtual environment for oda-api 1.3.5 (default: under ~/.cache)")
    parser.add_argument("--report-only", action="store_true",
                        help="only rewrite the Markdown report from the JSON of the last run")
    parser.add_argument("--only", default=None,
                        help="measure only these sections (comma-separated, of "
                             f"{','.join(SECTIONS)}) and merge them into the last full run")
    options = parser.parse_args()
    if options.output is None:
        options.output = str(HERE / ("results.md" if options.server == "1.3.3"
                                     else f"results-{options.server}.md"))
    sections = SECTIONS
    if options.only:
        sections = tuple(name.strip() for name in options.only.split(",") if name.strip())
        unknown = [name for name in sections if name not in SECTIONS]
        if unknown:
            parser.error(f"unknown sections {', '.join(unknown)} (known: {', '.join(SECTIONS)})")
    if options.report_only:
        saved = json.loads(Path(options.output).with_suffix(".json").read_text())
        Path(options.output).write_text(report(saved["results"], saved["info"]))
        return
    options.repeat = 2 if options.quick else 7
    options.repeat_decode = 2 if options.quick else 5
    options.repeat_slow = 1 if options.quick else 5
    options.poll_seconds = 20.0 if options.quick else 120.0
    options.jobs = 20 if options.quick else 100

    from astroquery_mmoda.testing import LocalDispatcher
    from astroquery_mmoda.testing.servers import get_server

    started = time.monotonic()
    oda = provision_oda_api(Path(options.oda_venv) if options.oda_venv else default_oda_venv())
    ours = Path(sys.executable)
    info = {"date": datetime.date.today().isoformat(), "machine": machine(),
            "dispatcher_version": get_server(options.server).version, "repeat": options.repeat,
            "repeat_decode": options.repeat_decode, "repeat_slow": options.repeat_slow,
            "versions_ours": package_versions(ours, ["astroquery_mmoda", "astroquery", "astropy",
                                                     "numpy", "requests"]),
            "versions_oda": package_versions(oda, ["oda-api", "astropy", "numpy", "requests"])}
    workdir = tempfile.mkdtemp(prefix="mmoda-bench-")
    PYCACHE["prefix"] = os.path.join(workdir, "pycache")
    try:
        with LocalDispatcher(server=options.server) as dispatcher:
            bench = Bench(options, ours, oda, dispatcher, workdir)
            for name in sections:
                log(f"{name} ...")
                getattr(bench, name)()
                log(f"{name}: done")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    results = bench.results
    if options.only:
        saved = json.loads(Path(options.output).with_suffix(".json").read_text())
        results = dict(saved["results"], **bench.results)
        info = dict(saved["info"], remeasured={"date": info["date"], "sections": list(sections),
                                               "versions_ours": info["versions_ours"]})
    text = report(results, info)
    bench.results = results
    Path(options.output).write_text(text)
    Path(options.output).with_suffix(".json").write_text(
        json.dumps({"info": info, "results": bench.results}, indent=1))
    print(text)
    log(f"done in {time.monotonic() - started:.0f} s; wrote {Path(options.output).name}")


if __name__ == "__main__":
    main()
