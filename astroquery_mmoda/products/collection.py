"""`ProductSet`: the decoded products of one answer, their selection and their files."""
import functools
import json
import os
import re
import types
from collections.abc import Mapping
from pathlib import Path

from ..display import html_table, missing_name
from ..writing import ecsv, write_files
from .shown import _redact, _short
from .tables import _DATA_SUFFIXES

__all__ = ["ProductSet"]


class ProductSet(Mapping):
    """The decoded products of one dispatcher answer: an ordered, read-only mapping.

    Values are `~astropy.io.fits.HDUList` (kind ``'fits'``),
    `~astropy.table.Table` (``'catalog'``, ``'table'``), `NamedBytes`
    (``'binary'``, ``'image'``), text values (``'text'``: the value as sent,
    usually a `str`), dictionaries (``'gw'``: gravitational-wave strain,
    spectrogram and contour products, kept as decoded JSON) and JSON values
    as sent (``'echo'``: the parameters the service saw; ``'progress'``: what
    a running job reports, usually HTML text; ``'other'``: a key of the answer
    that the package does not know, named after it).

    **Names.** Each product is named by its own ``name`` (for pictures, the
    stem of ``filename`` when unnamed; else its ``product`` meta-data entry;
    else, for FITS-like products, the product asked for; else its kind),
    whitespace turned into ``_``, followed by ``_<src_name>`` when its
    meta-data have a non-empty ``src_name`` not already at the end.
    A name met again gets ``_2``, ``_3``, ... in the order of the answer (the
    order of the keys of :func:`decode_products`); the first keeps the bare
    name.  The source catalog is always ``'catalog'``.

    Attributes
    ----------
    meta : mapping
        Name -> meta-data `dict` of the product (decoded from JSON).
    kind : mapping
        Name -> kind (``'fits'``, ``'catalog'``, ``'table'``, ``'binary'``,
        ``'image'``, ``'text'``, ``'gw'``, ``'echo'``, ``'progress'`` or
        ``'other'``).
    job_id : str or None
        The dispatcher's job.
    analysis_parameters : dict
        The parameters the dispatcher used, without tokens.
    refused : mapping
        The items of the answer that were not decoded (e.g.
        ``'astropy_table_product_binary_list[0] (spectrum)'``) -> why.

    Examples
    --------
    >>> ps = ProductSet([("lc_Crab", "text", "1.0", {"src_name": "Crab"})], job_id="abc")
    >>> list(ps), ps.kind["lc_Crab"], list(ps.select(src_name="Crab"))
    (['lc_Crab'], 'text', ['lc_Crab'])
    """

    def __init__(self, items=(), *, job_id=None, analysis_parameters=None, refused=None):
        self._values, meta, kind = {}, {}, {}
        for name, item_kind, value, item_meta in items:
            if not isinstance(name, str) or name in self._values:
                raise ValueError(f"product names must be unique strings: {name!r}")
            self._values[name] = value
            kind[name] = item_kind
            meta[name] = item_meta if isinstance(item_meta, dict) else {}
        self.meta = types.MappingProxyType(meta)
        self.kind = types.MappingProxyType(kind)
        self.job_id = job_id if isinstance(job_id, str) else None
        self.analysis_parameters = dict(analysis_parameters or {})
        self.refused = types.MappingProxyType(dict(refused or {}))

    def __getitem__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise missing_name(name, self._values, "product") from None

    def __iter__(self):
        return iter(self._values)

    def __len__(self):
        return len(self._values)

    def select(self, **criteria):
        """The products whose meta-data have all the given values.

        A product without one of the keys does not match.

        Examples
        --------
        >>> ps = ProductSet([("a", "text", "x", {"src_name": "Crab"}), ("b", "text", "y", {})])
        >>> list(ps.select(src_name="Crab")), list(ps.select(src_name="Vela"))
        (['a'], [])
        """
        chosen = [(name, self.kind[name], value, self.meta[name])
                  for name, value in self._values.items() if _matches(self.meta[name], criteria)]
        return ProductSet(chosen, job_id=self.job_id, analysis_parameters=self.analysis_parameters,
                          refused=self.refused)

    def write(self, directory, *, overwrite=False, prefix=""):
        """Write every product into ``directory`` (created if needed).

        FITS products go to ``.fits``, tables and the catalog to ``.ecsv``,
        binaries and pictures to their suggested suffix (``.bin`` when
        unknown), text and progress reports to ``.txt`` (JSON for non-text
        values) and gravitational-wave, echo and other products to ``.json``.
        File names are ``prefix`` plus the product name, reduced to letters,
        digits and ``._+-`` (a Windows device name such as ``CON`` or ``COM1``
        gets a leading ``_``); a binary keeps a suffix only when it is a known
        data suffix (``.fits``, ``.root``, ``.png``, ``.csv``, ...), so a
        server's ``setup.exe`` is written as ``setup.exe.bin``.

        The files are written all or nothing with the package's safe writer
        (``astroquery_mmoda.writing``): each one goes to a temporary file in
        ``directory`` first and is renamed into place once all are written;
        a target that is a symbolic link or not a regular file is refused.

        Parameters
        ----------
        directory : path-like
        overwrite : bool
            Replace existing files.  If False (default) and any target exists,
            nothing is written.
        prefix : str
            Prepended to every file name.

        Returns
        -------
        list of pathlib.Path
            The files written, in product order.

        Raises
        ------
        FileExistsError
            When ``overwrite`` is False and some files exist already.
        astroquery_mmoda.writing.UnsafeTargetError
            When a target is a symbolic link or not a regular file (nothing written).
        """
        directory = Path(directory)
        plan = self._file_plan(directory, prefix)
        if not overwrite:
            existing = [str(path) for path, _ in plan if os.path.lexists(path)]
            if existing:
                raise FileExistsError(
                    f"{len(existing)} file(s) exist already, nothing written (use overwrite=True): "
                    f"{_short(', '.join(existing), 300)}")
        directory.mkdir(parents=True, exist_ok=True)
        return write_files(plan, overwrite=overwrite)

    def _file_plan(self, directory, prefix):
        """``(path, content)`` of every product: unique names (case-insensitively), product order."""
        plan, taken = [], set()
        for name, value in self._values.items():
            stem = _safe_filename(f"{prefix}{name}")
            suffix = _file_suffix(self.kind[name], value)
            candidate, number = stem, 1
            while f"{candidate}{suffix}".lower() in taken:
                number += 1
                candidate = f"{stem}_{number}"
            taken.add(f"{candidate}{suffix}".lower())
            plan.append((directory / f"{candidate}{suffix}", _file_content(self.kind[name], value)))
        return plan

    def show(self):
        """Print one line per product, as oda_api's ``DataCollection.show()`` does (for migrants)."""
        for index, name in enumerate(self._values):
            print(_redact(f"ID={index} prod_name={name} kind={self.kind[name]} "
                          f"meta_data: {_short(self.meta[name], 300)}"))

    def _repr_html_(self):
        rows = [[name, self.kind[name], _summary(self.kind[name], value), self.meta[name].get("src_name")]
                for name, value in self._values.items()]
        caption = f"MMODA products of job {self.job_id}" if self.job_id else "MMODA products"
        if self.refused:
            caption += f"; refused: {_short(', '.join(self.refused), 300)}"
        return html_table(["name", "kind", "content", "source"], rows, caption=caption)

    def __repr__(self):
        head = f"<ProductSet job_id={self.job_id!r}: {len(self)} product{'s' * (len(self) != 1)}>"
        if not self._values and not self.refused:
            return _redact(head)
        width = min(max((len(name) for name in self._values), default=1), 40)
        lines = [head]
        for name, value in self._values.items():
            source = self.meta[name].get("src_name")
            source = f" [src_name={_short(source, 30)}]" if isinstance(source, str) and source else ""
            lines.append(f"  {name:<{width}}  {self.kind[name]:<7}  "
                         f"{_summary(self.kind[name], value)}{source}")
        if self.refused:
            lines.append(f"  refused: {_short(', '.join(self.refused), 300)}")
        return _redact("\n".join(lines))


def _matches(meta, criteria):
    for key, wanted in criteria.items():
        if key not in meta:
            return False
        try:
            if not bool(meta[key] == wanted):
                return False
        except Exception:
            return False
    return True


def _summary(kind, value):
    try:
        if kind == "fits":
            names = [hdu.name or "?" for hdu in value]
            text = ", ".join(names[:6]) + (", ..." if len(names) > 6 else "")
            return f"HDUs: {text}"
        if kind in ("catalog", "table"):
            return f"{len(value)} rows x {len(value.colnames)} columns"
        if kind in ("binary", "image"):
            return f"{len(value)} bytes ({value.suggested_suffix})"
        if kind in ("gw", "echo", "other") and isinstance(value, dict):
            return f"keys: {_short(', '.join(map(str, value)), 50)}"
        return _short(value, 50)
    except Exception:
        return f"<{type(value).__name__}>"


def _safe_filename(text):
    """A file stem from a product name: portable characters, no Windows device name, at most 180."""
    name = re.sub(r"[^A-Za-z0-9._+-]+", "_", text).strip("._")[:180] or "product"
    if _WINDOWS_DEVICE_RE.match(name.split(".")[0]):
        name = f"_{name}"
    return name


# Windows opens these names (with any suffix) as devices, not files.
_WINDOWS_DEVICE_RE = re.compile(r"(CON|PRN|AUX|NUL|CONIN\$|CONOUT\$|COM[0-9]|LPT[0-9])\Z", re.IGNORECASE)


def _file_suffix(kind, value):
    if kind == "fits":
        return ".fits"
    if kind in ("catalog", "table"):
        return ".ecsv"
    if kind in ("binary", "image"):
        suffix = getattr(value, "suggested_suffix", None)
        known = isinstance(suffix, str) and suffix[:1] == "." and suffix[1:].lower() in _DATA_SUFFIXES
        return suffix.lower() if known else ".bin"
    if kind in ("gw", "echo", "other"):
        return ".json"
    return ".txt"


def _file_content(kind, value):
    """What `write_files` writes for a product: bytes, or a function streaming into the file."""
    if kind == "fits":
        return functools.partial(value.writeto, output_verify="silentfix")
    if kind in ("catalog", "table"):
        return ecsv(value)
    if isinstance(value, (bytes, bytearray)):
        return value
    if isinstance(value, str) and kind not in ("gw", "echo", "other"):
        return value.encode("utf-8")
    return json.dumps(value, indent=1, default=str).encode("utf-8")
