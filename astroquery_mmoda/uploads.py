"""File parameters: paths and file objects sent as multipart uploads.

The dispatcher takes some parameters as uploaded files: ``user_catalog_file``
(a FITS or ECSV catalog) and ``user_scw_list_file`` (a science-window list) on
every version, and the file parameters of current services (e.g.
``dummy_POSIX_file``).  A `pathlib.Path` or an open binary file given for any
parameter becomes an `Upload`: its content is read at once and sent with
every request of the job, by POST, as a multipart part named after the
parameter.  A plain `str` is never taken for a file (it may be a URL or text).
"""
import hashlib
import io
import os

from .exceptions import InvalidQueryError

__all__ = ["MAX_UPLOAD_BYTES", "Upload", "as_upload", "split_uploads"]

#: The largest file sent (bytes).
MAX_UPLOAD_BYTES = 64 * 2**20


class Upload:
    """The content of a file parameter, ready for a multipart request.

    Its `str` names the file and its content's SHA-256 (what the cache key and
    ``get_query_payload`` show); ``multipart`` is the ``(filename, bytes)`` pair
    that `requests` sends.

    Examples
    --------
    >>> upload = Upload("catalog.ecsv", b"# %ECSV 1.0")
    >>> str(upload), upload.multipart
    ('<file catalog.ecsv sha256:1598cfcadc18d24c>', ('catalog.ecsv', b'# %ECSV 1.0'))
    """

    def __init__(self, filename, content):
        self.filename = filename
        self.content = bytes(content)
        self.sha256 = hashlib.sha256(self.content).hexdigest()

    @property
    def multipart(self):
        """``(filename, content)`` as `requests` takes it in ``files=``."""
        return (self.filename, self.content)

    def __str__(self):
        return f"<file {self.filename} sha256:{self.sha256[:16]}>"

    __repr__ = __str__

    def __eq__(self, other):
        return isinstance(other, Upload) and (other.filename, other.sha256) == \
            (self.filename, self.sha256)

    def __hash__(self):
        return hash(self.sha256)


def as_upload(name, value):
    """An `Upload` of a path-like or file-object ``value``; any other value is returned as it is."""
    if isinstance(value, Upload):
        return value
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        try:
            size = os.stat(path).st_size
            if size > MAX_UPLOAD_BYTES:
                raise InvalidQueryError(f"{name}: the file {path} is larger than "
                                        f"{MAX_UPLOAD_BYTES // 2**20} MB")
            with open(path, "rb") as stream:
                content = stream.read(MAX_UPLOAD_BYTES + 1)
        except OSError as exc:
            raise InvalidQueryError(f"{name}: cannot read the file {path} "
                                    f"({exc.strerror or exc})") from None
        return Upload(os.path.basename(path) or name, content)
    if _is_file_object(value):
        content = value.read(MAX_UPLOAD_BYTES + 1)
        if isinstance(content, str):
            content = content.encode("utf-8")
        if not isinstance(content, (bytes, bytearray)):
            raise InvalidQueryError(f"{name}: reading the file object gave "
                                    f"{type(content).__name__}, not bytes")
        if len(content) > MAX_UPLOAD_BYTES:
            raise InvalidQueryError(f"{name}: the file is larger than {MAX_UPLOAD_BYTES // 2**20} MB")
        filename = getattr(value, "name", None)
        filename = os.path.basename(filename) if isinstance(filename, str) and filename else name
        return Upload(filename, content)
    return value


def _is_file_object(value):
    # Not any object with a read(): astropy tables have one (their unified I/O).
    return isinstance(value, io.IOBase) or (
        not isinstance(value, type) and callable(getattr(value, "read", None))
        and callable(getattr(value, "readable", None)))


def split_uploads(params):
    """``(others, uploads)``: the parameters without and with `Upload` values."""
    uploads = {name: value for name, value in params.items() if isinstance(value, Upload)}
    return {name: value for name, value in params.items() if name not in uploads}, uploads
