"""Start an MMODA dispatcher (cdci-data-analysis 1.3.x) with the offline work-arounds.

This file runs inside the dispatcher's own virtual environment, never in the
client's: it imports only the standard library, numpy and the dispatcher.

Work-arounds, none of which edits the dispatcher's files:

* numpy >= 1.24 removed ``np.bool``/``np.int``/``np.float``; the 2022 catalog
  code still uses them, so every request carrying ``selected_catalog`` would be
  answered with HTTP 400.  With ``--numpy-aliases`` the aliases are restored
  before anything is imported (each server's entry in ``servers.py`` says
  whether it still needs this).
* The INTEGRAL plugin looks up OSA versions in redis and then on an ISDC web
  server for every request; offline that turns every request into HTTP 500.
  The lookup is replaced by a fixed list.
* Without ``--integral`` the plugins are hidden from the dispatcher's plugin
  discovery, so the server only offers its built-in test instruments.
"""
import argparse
import os
import pkgutil
import sys

OSA_VERSIONS = ["OSA10.2", "OSA11.0", "OSA11.1", "OSA11.2"]


def _is_plugin(name):
    return ((name.startswith("cdci") and name.endswith("plugin"))
            or name.startswith("dispatcher_plugin_"))


def restore_numpy_aliases():
    import numpy

    for name, value in (("bool", bool), ("int", int), ("float", float),
                        ("complex", complex), ("object", object), ("str", str)):
        if name not in numpy.__dict__:
            setattr(numpy, name, value)


def hide_plugins():
    original = pkgutil.iter_modules

    def iter_modules(path=None, prefix=""):
        for module in original(path, prefix):
            if path is None and _is_plugin(module.name):
                continue
            yield module

    pkgutil.iter_modules = iter_modules


def fix_osa_versions():
    import cdci_osa_plugin.osa_common_pars as osa_common_pars

    osa_common_pars.get_osa_versions = lambda: list(OSA_VERSIONS)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf-file", required=True)
    parser.add_argument("--integral", action="store_true")
    parser.add_argument("--numpy-aliases", action="store_true")
    args = parser.parse_args(argv)

    if args.numpy_aliases:
        restore_numpy_aliases()
    if args.integral:
        fix_osa_versions()
    else:
        hide_plugins()

    # The same start-up as the dispatcher's run_osa_cdci_server.py, without
    # its proxy clean-up and without the reloader.
    from cdci_data_analysis.app_logging import app_logging
    from cdci_data_analysis.configurer import ConfigEnv
    from cdci_data_analysis.flask_app.app import run_app

    app_logging.level_by_logger = {"": "info"}
    app_logging.setup()
    conf = ConfigEnv.from_conf_file(args.conf_file, set_by="astroquery_mmoda.testing")
    sys.stdout.flush()
    run_app(conf, debug=False, threaded=True)


if __name__ == "__main__":
    os.environ.setdefault("DISPATCHER_DEBUG_MODE", "yes")
    main()
