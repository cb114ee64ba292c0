"""The package's modules import only from their own layer or the layers below (docs/design.rst)."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "astroquery_mmoda"

# Lowest first: keep in step with the picture in docs/design.rst.
LAYERS = {
    0: {"version", "exceptions", "redaction", "server_urls", "writing", "callers", "display", "progress",
        "json_decoding"},
    1: {"tokens", "metadata", "protocol", "quantities", "products", "xspec"},
    2: {"token_sources", "auth", "transport", "dispatcher"},
    3: {"cache_files", "cache", "journal", "jobs"},
    4: {"params", "uploads", "submission", "integral", "integral_results", "campaigns", "migration",
        "catalogs"},
    5: {"core", "integral_methods", "description_methods"},
    6: {"cli", "plots", "tutorial"},
}
LAYER_OF = {name: level for level, names in LAYERS.items() for name in names}
# The tutorial runs offline against the package's own local dispatcher: the one user of testing/.
USES_TESTING = {"tutorial"}


def _top_module(path):
    return path.relative_to(PACKAGE).with_suffix("").parts[0]


def _package_imports(path, source=None):
    """Top-level modules of the package that ``path`` (or ``source`` placed there) imports.

    Lazy imports inside functions count too.
    """
    tree = ast.parse(path.read_text(encoding="utf-8") if source is None else source)
    depth = len(path.relative_to(PACKAGE).parts) - 1
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0:
                parts = (node.module or "").split(".")
                if parts[0] == "astroquery_mmoda" and len(parts) > 1:
                    found.add(parts[1])
                elif parts == ["astroquery_mmoda"]:
                    found.update(alias.name for alias in node.names)
            elif node.level == depth + 1:  # relative to the package's top
                if node.module:
                    found.add(node.module.split(".")[0])
                else:
                    found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "astroquery_mmoda" and len(parts) > 1:
                    found.add(parts[1])
    return found - {"conf", "log"}  # the package's __init__ objects


def _package_files():
    return sorted(path for path in PACKAGE.rglob("*.py")
                  if _top_module(path) not in ("testing", "__init__"))


def _import_graph():
    graph = {}
    for path in _package_files():
        own = _top_module(path)
        graph.setdefault(own, set()).update(_package_imports(path) - {own})
    return graph


def test_every_module_has_a_layer():
    missing = set(_import_graph()) - set(LAYER_OF)
    assert not missing, f"add these modules to LAYERS and docs/design.rst: {sorted(missing)}"


@pytest.mark.parametrize("path", _package_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_never_go_up(path):
    own = _top_module(path)
    upward = {name for name in _package_imports(path) - {own}
              if name in LAYER_OF and LAYER_OF[name] > LAYER_OF[own]}
    assert not upward, f"{own} (layer {LAYER_OF[own]}) imports {sorted(upward)} from above"


def test_no_import_cycles():
    graph = _import_graph()
    state = {}

    def visit(module, trail):
        state[module] = "open"
        for name in sorted(graph.get(module, ())):
            if state.get(name) == "open":
                raise AssertionError("import cycle: " + " -> ".join(trail + [module, name]))
            if name not in state:
                visit(name, trail + [module])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [])


def test_package_never_imports_testing():
    offenders = sorted({_top_module(path) for path in _package_files()
                        if "testing" in _package_imports(path)} - USES_TESTING)
    assert not offenders, f"{offenders} import astroquery_mmoda.testing"


@pytest.mark.parametrize("source, expected", [
    ("def f():\n    from ..core import Mmoda\n", {"core"}),
    ("from .. import jobs, writing\n", {"jobs", "writing"}),
    ("import astroquery_mmoda.cli.output\n", {"cli"}),
    ("from .tables import x\n", set()),  # inside the products package
])
def test_the_checker_sees_every_import_form(source, expected):
    assert _package_imports(PACKAGE / "products" / "probe.py", source) == expected


@pytest.mark.parametrize("module, names", [
    ("astroquery_mmoda.dispatcher", ["Envelope", "MmodaWarning", "encode_params", "parse_envelope",
                                     "envelope_from_data", "raise_for_job_failure", "parse_meta_data"]),
    ("astroquery_mmoda.auth", ["check_server_url", "redact", "decode_token", "TokenInfo"]),
    ("astroquery_mmoda.jobs", ["Job", "JobGroup", "new_session_id", "summarize_reports"]),
])
def test_names_that_moved_still_import_from_where_they_were(module, names):
    import importlib

    imported = importlib.import_module(module)
    missing = [name for name in names if not hasattr(imported, name)]
    assert not missing, f"{module} no longer offers {missing}"
