"""A multi-source ISGRI light-curve answer in the public shape, encoded by the
dispatcher's own code in its environment."""
import hashlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path


from .lightcurves import write_isgri_lightcurve
from .model import DEFAULT_DETECTION_THRESHOLD, ISGRI_OBSERVATION, catalog_dict, sky_sources


# -- multi-source light curves in the public shape ------------------------------------

# Runs in the dispatcher's environment: the plugin's own product builder and the
# dispatcher's encoder, on a DDA-like result listing several sources.
_ENCODER_SCRIPT = r"""
import json, sys, tempfile
import numpy
for _name, _value in (("bool", bool), ("int", int), ("float", float)):
    if _name not in numpy.__dict__:
        setattr(numpy, _name, _value)
from cdci_osa_plugin.osa_common_pars import DummyOsaRes
import cdci_osa_plugin.osa_lightcurve_query as lc_query
# the class is spelled OsaLigthtCurve in the 1.0 plugin, OsaLightCurve in 2.0
LightCurve = getattr(lc_query, "OsaLightCurve", None) or lc_query.OsaLigthtCurve
from oda_api.api import DispatcherAPI

job = json.load(open(sys.argv[1]))
res = DummyOsaRes()
res.extracted_sources = []
for index, path in enumerate(job["files"]):
    setattr(res, "lc_%d" % index, path)
    res.extracted_sources.append(("source_%d" % index, "lc_%d" % index))
with tempfile.TemporaryDirectory() as out_dir:
    products = LightCurve.build_isgri_lc_from_ddosa_res(res, file_dir=out_dir, prod_prefix="")
    encoded = [product.data.encode() for product in products]
api_code = DispatcherAPI.set_api_code(job["par_dic"], url=job["url"])
with open(job["output"], "w") as handle:
    json.dump({"numpy_data_product_list": encoded, "api_code": api_code}, handle)
"""


def _identifier(text, length, alphabet="0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
    digest = hashlib.sha256(text.encode()).digest()
    return "".join(alphabet[b % len(alphabet)] for b in digest[:length])


def multi_source_lightcurve_envelope(token=None, *, sources=None, time_bin=100.0, venv_dir=None,
                                     server=None, timeout=180.0):
    """A ``run_analysis`` answer with one ISGRI light curve per source, as MMODA gives it.

    The public MMODA answers an ``isgri_lc`` request with one light-curve
    product per catalog source; the plugin's Dummy mode gives one.  This builds
    the public shape from light curves of the test sky (`write_isgri_lightcurve`)
    with the plugin's own product builder and the dispatcher's encoder, run in
    the dispatcher's virtual environment (a few seconds).

    Parameters
    ----------
    token : str, optional
        Echoed in ``analysis_parameters`` and ``api_code``, as the server does.
    sources : sequence of SkySource, optional
        Default: the ISGRI sources above `DEFAULT_DETECTION_THRESHOLD`.
    time_bin : float
        Light-curve bin (s).
    venv_dir : path-like, optional
        The dispatcher's environment (see ``default_venv_dir``); installed if needed.
    server : str, optional
        The dispatcher version of that environment (see ``servers.SERVERS``).
    timeout : float
        Seconds allowed for the encoding subprocess.

    Returns
    -------
    dict
        The JSON envelope: ``query_status`` "done", ``exit_status``,
        ``job_monitor``, and ``products`` with ``analysis_parameters``,
        ``api_code``, ``input_prod_list``, ``job_id``, ``session_id`` and
        ``numpy_data_product_list`` (each product: name ``isgri_lc``, meta-data
        ``src_name``, ``time_bin`` (d), ``time`` "TIME", ``rate`` "RATE",
        ``rate_err`` "ERROR").
    """
    from ..servers import provision_dispatcher_venv, venv_python

    if sources is None:
        sources = sky_sources("isgri", min_significance=DEFAULT_DETECTION_THRESHOLD)
    sources = list(sources)
    observation = ISGRI_OBSERVATION
    par_dic = {
        "DEC": observation.dec, "E1_keV": observation.e_min, "E2_keV": observation.e_max,
        "RA": observation.ra, "T1": observation.start + ".000", "T2": observation.end + ".000",
        "T_format": "isot", "api": "True", "instrument": "isgri", "max_pointings": 500,
        "osa_version": "OSA11.2", "product_type": "isgri_lc", "query_status": "new",
        "query_type": "Real", "radius": 15.0, "scw_list": [observation.scw_id],
        "selected_catalog": json.dumps(catalog_dict("isgri", min_significance=None) if not sources
                                       else _catalog_of(sources)),
        "src_name": sources[0].name if sources else "", "time_bin": float(time_bin),
        "time_bin_format": "sec", "token": token,
    }
    fingerprint = json.dumps({k: v for k, v in par_dic.items() if k != "token"}, sort_keys=True)
    job_id = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    session_id = _identifier(fingerprint, 16)
    par_dic["session_id"] = session_id

    python = venv_python(provision_dispatcher_venv(venv_dir, server=server))
    with tempfile.TemporaryDirectory(prefix="mmoda-lc-") as folder:
        folder = Path(folder)
        files = [str(write_isgri_lightcurve(folder / f"isgri_lc_{i}.fits", s, time_bin=time_bin))
                 for i, s in enumerate(sources)]
        job = folder / "job.json"
        output = folder / "encoded.json"
        job.write_text(json.dumps({"files": files, "par_dic": par_dic, "output": str(output),
                                   "url": "https://www.astro.unige.ch/mmoda/dispatch-data"}))
        env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
        env["CDCI_OSA_PLUGIN_CONF_FILE"] = os.devnull
        done = subprocess.run([str(python), "-W", "ignore", "-c", _ENCODER_SCRIPT, str(job)],
                              cwd=folder, env=env, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0 or not output.exists():
            raise RuntimeError("encoding the light curves in the dispatcher's environment failed:\n"
                               + (done.stdout + done.stderr)[-4000:])
        encoded = json.loads(output.read_text())

    exit_status = {"comment": "", "debug_message": "", "error_message": "", "job_status": "done",
                   "message": "", "status": 0, "warning": ""}
    return {
        "exit_status": exit_status,
        "job_monitor": {"job_id": job_id, "session_id": session_id, "status": "done"},
        "job_status": "done",
        "products": {
            "analysis_parameters": par_dic,
            "api_code": encoded["api_code"],
            "input_prod_list": [observation.scw_id],
            "job_id": job_id,
            "numpy_data_product_list": encoded["numpy_data_product_list"],
            "prod_process_message": "",
            "session_id": session_id,
        },
        "query_status": "done",
        "session_id": session_id,
        "time_request": time.time(),
    }


def _catalog_of(sources):
    names = {s.name for s in sources}
    instrument = sources[0].instrument
    full = catalog_dict(instrument, min_significance=None)
    keep = [i for i, name in enumerate(full["cat_column_list"][1]) if name in names]
    full["cat_column_list"] = [[column[i] for i in keep] for column in full["cat_column_list"]]
    full["cat_column_list"][0] = list(range(len(keep)))
    return full
