"""The loopback stand-ins of the DDA back-end and the SPI-ACS service, without a dispatcher."""
import gzip
import json

import requests

from astroquery_mmoda.testing.sky import LIGHTCURVE_SCW, SUBMITTED_SCW, AcsService, DdaService


def test_stand_ins_answer_on_loopback():
    with DdaService() as dda, AcsService() as acs:
        assert dda.url.startswith("http://127.0.0.1:") and acs.url.startswith("http://127.0.0.1:")
        poke = requests.post(f"{dda.url}/api/v2.0/poke", data="{}", timeout=10)
        assert poke.status_code == 200
        refused = requests.post(f"{dda.url}/api/v2.0/mosaic_ii_skyimage", timeout=10,
                                data=json.dumps({"assume": 'ddosa.IDScWList(use_scwid_list=["1"])'})).json()
        assert refused["exceptions"]["exception"][0] == "dataanalysis.core.AnalysisException"
        assume = f'ddosa.IDScWList(use_scwid_list=["{SUBMITTED_SCW}"])'
        delegated = requests.post(f"{dda.url}/api/v2.0/mosaic_ii_skyimage", timeout=10,
                                  data=json.dumps({"assume": assume})).json()
        assert delegated["exceptions"]["exception_type"] == "delegation"
        lc_request = {"assume": f'ddosa.IDScWList(use_scwid_list=["{LIGHTCURVE_SCW}"]),'
                                'ddosa.LCTimeBin(use_time_bin_seconds=200.000000)',
                      "inject": json.dumps([["SourceCatalog", {"catalog": [{"NAME": "GX 349+2"}]}]])}
        computed = requests.post(f"{dda.url}/api/v2.0/ISGRILCSum", data=json.dumps(lc_request),
                                 timeout=30).json()
        assert computed["exceptions"] == [] and len(computed["cached_path"]) == 1
        assert computed["data"]["extracted_sources"] == [["GX 349+2", "lc_0"]]
        assert computed["data"]["lc_0"] == ["DataFile", "isgri_lc_0.fits"]
        fetched = requests.get(f"{dda.url}/api/2.0/fetch-file", timeout=10, params={
            "cached_path": computed["cached_path"][0], "filename": "isgri_lc_0.fits"})
        assert gzip.decompress(fetched.content).startswith(b"SIMPLE")
        assert dda.requests_served == 5
        assert dda.targets == ["mosaic_ii_skyimage", "mosaic_ii_skyimage", "ISGRILCSum"]
        lc = requests.get(acs.url.format(t0_isot="2003-03-15T23:30:10.000", dt_s=60.0),
                          params={"t0_isot": "2003-03-15T23:30:10.000", "dt_s": 60.0}, timeout=10)
        assert lc.status_code == 200 and len(lc.text.splitlines()) == 2400
    assert "stopped" in repr(dda)
