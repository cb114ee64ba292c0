"""Offline testing with a real MMODA dispatcher on the loopback interface.

See :ref:`astroquery_mmoda_testing` in the documentation.
"""
from .fault_proxy import FaultProxy
from .local_dispatcher import DISPATCHER_VERSION, DispatcherStartError, LocalDispatcher
from .servers import (DEFAULT_SERVER, SERVERS, ProvisioningError, available_servers,
                      default_venv_dir, provision_dispatcher_venv)

__all__ = ["LocalDispatcher", "FaultProxy", "DispatcherStartError", "ProvisioningError",
           "provision_dispatcher_venv", "default_venv_dir", "DISPATCHER_VERSION",
           "SERVERS", "DEFAULT_SERVER", "available_servers"]
