"""Progress you can see: a bar for many jobs, in a notebook (a widget or a line of text) or a terminal.

astropy's `~astropy.utils.console.ProgressBar` draws only on a terminal, so a
notebook would show nothing.  `Progress` picks what the session can show:

* in a Jupyter kernel, an ``ipywidgets`` bar with the progress line beside it
  when ``ipywidgets`` is installed, else one text line updated in place
  (``IPython.display`` with a display id: it works in any front end, and in
  notebooks run headless);
* on a terminal, astropy's `~astropy.utils.console.ProgressBar`;
* elsewhere nothing (the log says the same at INFO).
"""
import sys

__all__ = ["Progress", "in_notebook"]


def _shell():
    """The running IPython shell, or None; IPython is not imported for it (a script has none)."""
    ipython = sys.modules.get("IPython")
    return getattr(ipython, "get_ipython", lambda: None)() if ipython is not None else None


def in_notebook():
    """Whether the code runs in a Jupyter kernel (not a terminal IPython)."""
    return hasattr(_shell(), "kernel")


def interactive():
    """Whether someone is watching: a Jupyter kernel, IPython, or a terminal."""
    return _shell() is not None or sys.stdout.isatty()


class Progress:
    """A progress display of ``total`` steps; `update` it, then `close` it.

    Parameters
    ----------
    total : int
    label : str
        What is counted (e.g. ``'MMODA jobs'``).
    """

    def __init__(self, total, label="MMODA jobs"):
        self.total, self.label = max(1, int(total)), label
        self._widget = self._text = self._bar = None
        if in_notebook():
            self._start_notebook()
        elif sys.stdout.isatty() or sys.stderr.isatty():
            from astropy.utils.console import ProgressBar
            self._bar = ProgressBar(self.total, file=sys.stdout if sys.stdout.isatty() else sys.stderr)

    def _start_notebook(self):
        from IPython.display import display

        try:
            import ipywidgets
        except ImportError:
            self._text = display({"text/plain": self._line(0, "")}, raw=True, display_id=True)
            return
        self._widget = ipywidgets.IntProgress(value=0, min=0, max=self.total, description=self.label)
        self._caption = ipywidgets.Label(value="")
        display(ipywidgets.HBox([self._widget, self._caption]))

    def _line(self, done, summary):
        width = 30
        filled = int(width * done / self.total)
        return f"{self.label}: [{'#' * filled}{'.' * (width - filled)}] {summary or f'{done}/{self.total}'}"

    def update(self, done, summary=""):
        """Show ``done`` steps of ``total``, and the progress line ``summary``."""
        done = min(max(0, int(done)), self.total)
        if self._widget is not None:
            self._widget.value = done
            self._caption.value = summary
        elif self._text is not None:
            self._text.update({"text/plain": self._line(done, summary)}, raw=True)
        elif self._bar is not None:
            self._bar.update(done)

    def close(self):
        """End the display (a terminal bar moves to the next line)."""
        if self._bar is not None:
            self._bar.__exit__(None, None, None)
            self._bar = None
