"""``from astroquery_mmoda import Mmoda`` is cheap, and ``Mmoda`` is the client in every way."""
import json
import pickle
import subprocess
import sys

import pytest


def _fresh_process(code):
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_import_does_not_load_the_client():
    loaded = _fresh_process(
        "import json, sys\n"
        "from astroquery_mmoda import Mmoda\n"
        "print(json.dumps([m for m in ('astroquery.query', 'requests', 'astroquery_mmoda.core')"
        " if m in sys.modules]))")
    assert loaded == []


@pytest.mark.parametrize("first_use", [
    "repr(Mmoda)", "Mmoda.server", "dir(Mmoda)", "isinstance(Mmoda, object)",
    "pickle.dumps(Mmoda)", "pydoc.render_doc(Mmoda)", "setattr(Mmoda, 'note', 1)",
    "Mmoda.__doc__", "copy.copy(Mmoda)",
])
def test_first_use_of_any_kind_makes_the_stand_in_the_client(first_use):
    facts = _fresh_process(
        "import copy, json, pickle, pydoc\n"
        "from astroquery_mmoda import Mmoda\n"
        f"{first_use}\n"
        "import astroquery_mmoda.core as core\n"
        "from astroquery_mmoda import MmodaClass, Mmoda as again\n"
        "print(json.dumps([type(Mmoda) is MmodaClass, core.Mmoda is Mmoda, again is Mmoda,\n"
        "                  repr(Mmoda), callable(Mmoda.get_product)]))")
    assert facts == [True, True, True,
                     "<MmodaClass https://www.astro.unige.ch/mmoda/dispatch-data (not logged in)>", True]


def test_introspection_does_not_import_the_client():
    # what doctest's collection and inspect do with a module's objects
    loaded = _fresh_process(
        "import inspect, json, sys\n"
        "import astroquery_mmoda\n"
        "from astroquery_mmoda import Mmoda\n"
        "inspect.unwrap(Mmoda); inspect.isclass(Mmoda); inspect.isroutine(Mmoda)\n"
        "hasattr(Mmoda, '__wrapped__'); list(vars(astroquery_mmoda).items())\n"
        "print(json.dumps('astroquery_mmoda.core' in sys.modules))")
    assert loaded is False


def test_isinstance_before_any_other_use():
    # naming MmodaClass imports the client, which makes the stand-in the client
    facts = _fresh_process(
        "import json\n"
        "from astroquery_mmoda import Mmoda\n"
        "import astroquery_mmoda\n"
        "ok = isinstance(Mmoda, astroquery_mmoda.MmodaClass)\n"
        "print(json.dumps([ok, type(Mmoda).__name__]))")
    assert facts == [True, "MmodaClass"]


def test_help_documents_the_client():
    text = _fresh_process(
        "import json, pydoc\n"
        "from astroquery_mmoda import Mmoda\n"
        "print(json.dumps(pydoc.render_doc(Mmoda)))")
    assert "MmodaClass" in text
    assert "The ready-made `MmodaClass` instance" in text


def test_pickling_keeps_the_default_client_and_the_server():
    from astroquery_mmoda import Mmoda, MmodaClass

    assert pickle.loads(pickle.dumps(Mmoda)) is Mmoda
    other = MmodaClass(server="http://127.0.0.1:9/dispatch-data")
    copy = pickle.loads(pickle.dumps(other))
    assert type(copy) is MmodaClass and copy is not other
    assert copy.server == "http://127.0.0.1:9/dispatch-data"


def test_pickle_never_carries_the_token():
    from astroquery_mmoda import MmodaClass

    client = MmodaClass(server="http://127.0.0.1:9/dispatch-data", prompt=False)
    client._tokens._token = "header.payload-secret-part.signature"
    assert b"payload-secret-part" not in pickle.dumps(client)
