"""The progress display picks what the session can show (offline)."""
import types

from astroquery_mmoda import progress


def test_outside_a_notebook_and_a_terminal_nothing_is_drawn(capsys):
    bar = progress.Progress(3)
    bar.update(2, "2/3 done, 0 failed")
    bar.close()
    assert capsys.readouterr() == ("", "")


def test_in_a_kernel_without_widgets_one_text_line_is_updated(monkeypatch):
    shown = []

    class Handle:
        def update(self, obj, raw=False):
            shown.append(obj["text/plain"])

    def display(obj, raw=False, display_id=False):
        shown.append(obj["text/plain"])
        return Handle()

    monkeypatch.setattr(progress, "in_notebook", lambda: True)
    monkeypatch.setattr("IPython.display.display", display)
    monkeypatch.setitem(__import__("sys").modules, "ipywidgets", None)  # not installed
    bar = progress.Progress(4)
    bar.update(1, "ScW 50/200, jobs 1/4 done, 0 failed")
    bar.update(9)
    assert shown == ["MMODA jobs: [..............................] 0/4",
                     "MMODA jobs: [#######.......................] ScW 50/200, jobs 1/4 done, 0 failed",
                     "MMODA jobs: [##############################] 4/4"]


def test_a_kernel_is_told_from_a_terminal_ipython(monkeypatch):
    import IPython

    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace(kernel=object()))
    assert progress.in_notebook() and progress.interactive()
    monkeypatch.setattr(IPython, "get_ipython", lambda: types.SimpleNamespace())
    assert not progress.in_notebook() and progress.interactive()
