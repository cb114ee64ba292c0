"""Start nb2workflow's ``nb2service`` in the dispatcher's virtual environment.

``--parent-pid PID`` first: the service (and the notebook kernels it started) stop
when that process is gone.  The other arguments are nb2service's own (the notebook
folder, ``--host``, ``--port``...).
"""
import os
import sys


def main(argv):
    if argv[:1] == ["--parent-pid"]:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from _launcher import watch_parent

        watch_parent(int(argv[1]))
        argv = argv[2:]
    from nb2workflow import service

    sys.argv = ["nb2service", *argv]
    service.main()


if __name__ == "__main__":
    main(sys.argv[1:])
