"""How results show themselves: small HTML tables for notebooks, lookups that say what exists.

Every cell is escaped and has its tokens removed: what a server sent is shown as text, never as
markup.
"""
import difflib
import html

from .redaction import redact

__all__ = ["brief", "html_table", "missing_name"]


def brief(value, limit=60):
    """``repr(value)`` cut to ``limit`` characters, for messages; ``'a <type>'`` when it has none.

    A self-nesting list or an integer of thousands of digits has no repr to show.

    Examples
    --------
    >>> brief("Crab"), brief(10 ** 5000), brief(list(range(40)), 20)
    ("'Crab'", 'a int', '[0, 1, 2, 3, 4, 5...')
    """
    try:
        text = repr(value)
    except (RecursionError, ValueError):
        return f"a {type(value).__name__}"
    return text if len(text) <= limit else text[:limit - 3] + "..."


def html_table(names, rows, *, caption=None):
    """A small HTML table (``names`` as its header) for ``_repr_html_``.

    Examples
    --------
    >>> html_table(["name", "kind"], [["<b>", None]])
    '<table><thead><tr><th>name</th><th>kind</th></tr></thead><tbody><tr><td>&lt;b&gt;</td><td></td></tr></tbody></table>'
    """
    def cell(value):
        return html.escape(redact("" if value is None else str(value)))

    head = "".join(f"<th>{cell(name)}</th>" for name in names)
    body = "".join("<tr>" + "".join(f"<td>{cell(value)}</td>" for value in row) + "</tr>" for row in rows)
    title = f"<caption>{cell(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def missing_name(name, names, what):
    """The `KeyError` for a name that is not there, listing those that are (and close ones).

    Examples
    --------
    >>> missing_name("OAO 1657-41", ["OAO 1657-415", "4U 1700-377"], "spectrum").args[0]
    "no spectrum 'OAO 1657-41' (did you mean 'OAO 1657-415'?); there are: 'OAO 1657-415', '4U 1700-377'"
    """
    names = [str(known) for known in names]
    close = difflib.get_close_matches(str(name), names, n=3, cutoff=0.6)
    hint = f" (did you mean {' or '.join(map(repr, close))}?)" if close else ""
    listed = ", ".join(map(repr, names[:20])) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return KeyError(redact(f"no {what} {str(name)[:100]!r}{hint}; "
                           + (f"there are: {listed}" if names else "there are none")))
