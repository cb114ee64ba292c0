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
* The plugins are hidden from the dispatcher's plugin discovery, so the server
  only offers its built-in test instruments, except the INTEGRAL ones with
  ``--integral`` and the nb2workflow one (notebook services) with ``--notebooks``.

With ``--parent-pid`` the server stops itself (and its process group) when
that process is gone, e.g. a notebook kernel that was restarted, removing the
folder given with ``--remove-when-orphaned``.
"""
import argparse
import os
import pkgutil
import shutil
import signal
import sys
import threading
import time

OSA_VERSIONS = ["OSA10.2", "OSA11.0", "OSA11.1", "OSA11.2"]


NOTEBOOK_PLUGIN = "dispatcher_plugin_nb2workflow"


def _is_plugin(name):
    return ((name.startswith("cdci") and name.endswith("plugin"))
            or name.startswith("dispatcher_plugin_"))


def _is_integral_plugin(name):
    return _is_plugin(name) and name != NOTEBOOK_PLUGIN


def restore_numpy_aliases():
    import numpy

    for name, value in (("bool", bool), ("int", int), ("float", float),
                        ("complex", complex), ("object", object), ("str", str)):
        if name not in numpy.__dict__:
            setattr(numpy, name, value)


def hide_plugins(shown=lambda name: False):
    """Hide from the plugin discovery every plugin for which ``shown(name)`` is false."""
    original = pkgutil.iter_modules

    def iter_modules(path=None, prefix=""):
        for module in original(path, prefix):
            if path is None and _is_plugin(module.name) and not shown(module.name):
                continue
            yield module

    pkgutil.iter_modules = iter_modules


def fix_osa_versions():
    import cdci_osa_plugin.osa_common_pars as osa_common_pars

    osa_common_pars.get_osa_versions = lambda: list(OSA_VERSIONS)


def watch_parent(parent_pid, folder=None, interval=0.5):
    """Stop this server's process group once ``parent_pid`` is no longer its parent."""
    def watch():
        while os.getppid() == parent_pid:
            time.sleep(interval)
        # Only a folder this package made is removed: it holds the server's configuration.
        if folder and os.path.basename(folder).startswith("mmoda-dispatcher-") \
                and os.path.isfile(os.path.join(folder, "conf_env.yml")) and not os.path.islink(folder):
            shutil.rmtree(folder, ignore_errors=True)
        sys.stderr.write("the process that started this dispatcher is gone: stopping\n")
        sys.stderr.flush()
        try:
            os.killpg(os.getpgrp(), signal.SIGTERM)
        finally:
            os._exit(0)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conf-file", required=True)
    parser.add_argument("--integral", action="store_true")
    parser.add_argument("--notebooks", action="store_true")
    parser.add_argument("--numpy-aliases", action="store_true")
    parser.add_argument("--parent-pid", type=int)
    parser.add_argument("--remove-when-orphaned")
    args = parser.parse_args(argv)

    if args.parent_pid:
        watch_parent(args.parent_pid, args.remove_when_orphaned)

    if args.numpy_aliases:
        restore_numpy_aliases()
    if args.integral:
        fix_osa_versions()
    hide_plugins(lambda name: (args.integral and _is_integral_plugin(name))
                 or (args.notebooks and name == NOTEBOOK_PLUGIN))

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
