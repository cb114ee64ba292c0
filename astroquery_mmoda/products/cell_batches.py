"""The cells of a variable-length column, read from the pickle's bytes: `compact_cell_batches`.

A FITS table with a variable-length column pickles each cell as a numpy
array of its own: some 45 bytes of pickle, but some 450 bytes of stand-ins
once unpickled, so a table of 10^5 cells took several times its size in
memory while it was decoded.  Pickles write a list 1000 items at a time
(``MARK`` items ``APPENDS``).  This pass walks the opcodes of a protocol-4
pickle (what the servers' Pythons write) and replaces each batch made only of
such cells by one call of a private global standing for all of them; their
bytes are gathered in one buffer.  A batch is only replaced if nothing
outside it refers to its memo entries; the references to later entries are
renumbered, so the rest of the pickle reads as before.  The pass never evaluates anything: the
rewritten pickle is unpickled by the same allow-list unpickler, and the cells
are checked like any other array (`~.safe_pickle`).

A pickle the pass cannot follow is left as it is (`compact_cell_batches`
returns None); so is one without such batches.
"""
import bisect
import functools
import re
import secrets
from array import array

__all__ = ["compact_cell_batches", "CellBatches", "PiecesReader"]

#: Pickles smaller than this are unpickled as they are.
MIN_SIZE = 1 << 20
#: Fewer cells than this in a batch: not worth a call.
MIN_CELLS = 16
#: The walk gives up after this many opcodes outside the batches it replaces.
MAX_OTHER_OPCODES = 200_000

_F = rb"(?:\x95.{8})?"  # a FRAME may come between any two opcodes


def _get(name):
    return rb"(?:h(?P<%s1>.)|j(?P<%s4>.{4}))" % (name.encode(), name.encode())


# One cell: _reconstruct(ndarray, (0,), b'b') then BUILD (1, (n,), dtype, False, data).
_CELL_HEAD = re.compile(
    _F + _get("a") + _F + _get("b") + _F + rb"K\x00" + _F + rb"\x85" + _F + rb"\x94" + _F
    + _get("c") + _F + rb"\x87" + _F + rb"\x94" + _F + rb"R" + _F + rb"\x94" + _F
    + rb"\(" + _F + rb"K\x01" + _F + rb"(?:K(?P<n1>.)|M(?P<n2>.{2})|J(?P<n4>.{4}))" + _F
    + rb"\x85" + _F + rb"\x94" + _F + _get("d") + _F + rb"\x89" + _F
    + rb"(?:C(?P<l1>.)|B(?P<l4>.{4})|h(?P<e1>.)|j(?P<e4>.{4}))", re.DOTALL)
_TAIL_LITERAL = re.compile(_F + rb"\x94" + _F + rb"t" + _F + rb"\x94" + _F + rb"b", re.DOTALL)
_TAIL_MEMO = re.compile(_F + rb"t" + _F + rb"\x94" + _F + rb"b", re.DOTALL)
_FRAME = re.compile(_F, re.DOTALL)

# Opcodes of protocols 2 to 5 the walk steps over: argument bytes, or ``-n`` for an
# argument preceded by its n-byte length.
_ARGUMENTS = {op: 0 for op in b"(.012N\x88\x89})]ateldosu\x90\x91\x8f\x85\x86\x87Rb\x81\x92\x93\x94\x97\x98"}
_ARGUMENTS.update({ord("K"): 1, ord("M"): 2, ord("J"): 4, ord("G"): 8, ord("h"): 1, ord("j"): 4,
                   0x82: 1, 0x83: 2, 0x84: 4, 0x80: 1,
                   ord("C"): -1, ord("B"): -4, 0x8e: -8, ord("U"): -1, ord("T"): -4, 0x8c: -1,
                   ord("X"): -4, 0x8d: -8, 0x96: -8, 0x8a: -1, 0x8b: -4})
_MEMOIZE, _FRAME_OP, _MARK, _STOP, _GLOBAL = 0x94, 0x95, ord("("), ord("."), ord("c")
_BYTES_OPS = (ord("C"), ord("B"), 0x8e)


class CellBatches:
    """The cells taken out of a pickle: their shapes and bytes, batch by batch.

    Attributes
    ----------
    name : tuple of str
        The ``(module, name)`` of the private global that stands for a batch:
        random, so that no pickle can name it.
    counts, offsets : array.array
        Elements of each cell, and where its bytes start in ``buffer``
        (one more offset than cells: the end).
    batches : list of (int, int)
        The cells of each batch (a range of ``counts``).
    buffer : bytearray
    """

    def __init__(self):
        self.name = ("astroquery_mmoda.cells", f"batch_{secrets.token_hex(16)}")
        self.counts = array("q")
        self.offsets = array("q", [0])
        self.batches = []
        self.buffer = bytearray()

    def cells(self, index):
        """``(counts, offsets)`` of batch ``index``: slices of the arrays (offsets one longer)."""
        start, end = self.batches[index]
        return self.counts[start:end], self.offsets[start:end + 1]


class _CannotFollow(Exception):
    pass


class PiecesReader:
    """A binary file that reads the pieces of the rewritten pickle one after the other.

    The pieces are views of the pickle as sent and the short opcodes put in
    place of batches: the rewritten pickle is never copied whole.  It has
    what `pickle.Unpickler` uses: ``read``, ``readinto``, ``readline`` and
    ``peek`` (its read-ahead).
    """

    def __init__(self, pieces):
        self._pieces = [piece for piece in pieces if len(piece)]
        self._index = 0  # the piece being read
        self._offset = 0  # in it
        self.size = sum(map(len, self._pieces))

    def _take(self, count, advance):
        chunks, index, offset = [], self._index, self._offset
        while count > 0 and index < len(self._pieces):
            piece = self._pieces[index]
            chunk = piece[offset:offset + count]
            chunks.append(chunk)
            count -= len(chunk)
            offset += len(chunk)
            if offset >= len(piece):
                index, offset = index + 1, 0
        if advance:
            self._index, self._offset = index, offset
        return chunks

    def read(self, count=-1):
        if count is None or count < 0:
            count = self.size
        chunks = self._take(count, True)
        return bytes(chunks[0]) if len(chunks) == 1 else b"".join(chunks)

    def readinto(self, buffer):
        target = memoryview(buffer).cast("B")
        filled = 0
        for chunk in self._take(len(target), True):
            target[filled:filled + len(chunk)] = chunk
            filled += len(chunk)
        return filled

    def peek(self, count=1):
        return b"".join(self._take(max(count, 1), False))

    def readline(self, limit=-1):
        line = bytearray()
        while limit < 0 or len(line) < limit:
            chunk = self.read(1)
            if not chunk:
                break
            line += chunk
            if chunk == b"\n":
                break
        return bytes(line)


def _tail_end(data, end, plain, pattern):
    """Where the end of a cell (``plain``, or ``pattern`` with frames inside) that starts at ``end`` ends."""
    if data.startswith(plain, end):
        return end + len(plain)
    tail = pattern.match(data, end)
    return tail.end() if tail is not None else None


def _number(one, four):
    return one[0] if one is not None else int.from_bytes(four, "little")


def _get_op(index):
    return b"h" + bytes([index]) if index < 256 else b"j" + index.to_bytes(4, "little")


@functools.lru_cache(maxsize=16)
def _same_cells(references):
    """The pattern of a cell that names the memo entries ``references``, with no frame inside."""
    a1, a4, b1, b4, c1, c4, d1, d4 = references

    def get(one, four):
        return re.escape(b"h" + one if one is not None else b"j" + four)
    return re.compile(get(a1, a4) + get(b1, b4) + rb"K\x00\x85\x94" + get(c1, c4) + rb"\x87\x94R\x94\(K\x01"
                      + rb"(?:K(.)|M(.{2})|J(.{4}))\x85\x94" + get(d1, d4)
                      + rb"\x89(?:C(.)|B(.{4})|h(.)|j(.{4}))", re.DOTALL)


def compact_cell_batches(data):
    """``(pickle, batches)`` with the batches of cells replaced, or None if nothing was.

    Parameters
    ----------
    data : bytes-like
        A pickle.

    Returns
    -------
    (PiecesReader, CellBatches) or None
        The rewritten pickle, to be read as a file, and its cells.
    """
    view = memoryview(data).cast("B")
    if len(view) < MIN_SIZE or view[0] != 0x80 or view[1] not in (4, 5):
        return None
    try:
        return _Walk(view).run()
    except _CannotFollow:
        return None


class _Walk:
    def __init__(self, view):
        self.view = view
        self.data = view.obj if isinstance(view.obj, bytes) and len(view.obj) == len(view) \
            else bytes(view)
        self.memo = 0  # entries the unpickler's memo holds so far
        self.empty_bytes = set()  # memo entries that are b''
        self.replaced = []  # (first, last + 1) memo entries of the replaced batches
        self.firsts = []  # the first memo entry of each replaced batch
        self.removed = [0]  # entries no longer made, up to and including each replaced batch
        self.pieces = []
        self.piece_start = 0
        self.batches = CellBatches()

    def run(self):
        data, view, arguments = self.data, self.view, _ARGUMENTS
        pos, size, other = 0, len(data), 0
        last_empty = False
        while True:
            if pos >= size:
                raise _CannotFollow
            op = data[pos]
            if op == _MARK:
                end = self._batch(pos)
                if end is not None:
                    pos, last_empty = end, False
                    continue
            other += 1
            if other > MAX_OTHER_OPCODES:
                raise _CannotFollow
            if op == _FRAME_OP:  # frames are only read-ahead hints: the rewritten pickle has none
                self._cut(pos, pos + 9)
                pos += 9
                continue
            if op == _MEMOIZE:
                if last_empty:
                    self.empty_bytes.add(self.memo)
                self.memo += 1
            elif op in (ord("h"), ord("j")):
                width = 2 if op == ord("h") else 5
                index = _number(data[pos + 1:pos + 2] if width == 2 else None, data[pos + 1:pos + 5])
                self._check_reference(index)
                if self.firsts:  # the entries after a replaced batch move down
                    self._cut(pos, pos + width)
                    self.pieces.append(_get_op(self._renumbered(index)))
                pos, last_empty = pos + width, False
                continue
            elif op == _STOP:
                break
            if op == _GLOBAL:  # protocol 2 names globals as two lines of text
                end = data.find(b"\n", pos + 1)
                end = data.find(b"\n", end + 1) if end >= 0 else -1
                if end < 0:
                    raise _CannotFollow
                pos, last_empty = end + 1, False
                continue
            length = arguments.get(op)
            if length is None:  # text opcodes, PUT (the memo in step no more), persistent ids
                raise _CannotFollow
            if length >= 0:
                pos += 1 + length
                last_empty = False
                continue
            width = -length
            count = int.from_bytes(view[pos + 1:pos + 1 + width], "little")
            last_empty = count == 0 and op in _BYTES_OPS
            pos += 1 + width + count
        if not self.batches.batches:
            return None
        self.pieces.append(view[self.piece_start:pos + 1])
        return PiecesReader(self.pieces), self.batches

    def _cut(self, start, end):
        """Leave ``data[start:end]`` out of the rewritten pickle."""
        self.pieces.append(self.view[self.piece_start:start])
        self.piece_start = end

    def _check_reference(self, index):
        if not self._kept(index):
            raise _CannotFollow  # a replaced entry used elsewhere, or none at all

    def _renumbered(self, index):
        """The memo entry ``index`` (kept) in the rewritten pickle."""
        return index - self.removed[bisect.bisect_right(self.firsts, index)]

    def _kept(self, index):
        """Whether memo entry ``index`` exists and reads in the rewritten pickle as in this one."""
        if index >= self.memo:
            return False
        at = bisect.bisect_right(self.firsts, index) - 1
        return at < 0 or index >= self.replaced[at][1]

    def _batch(self, mark):
        """Replace the batch of cells after the MARK at ``mark``: the position after the batch, or None."""
        data, head = self.data, _CELL_HEAD.match
        pos = _FRAME.match(data, mark + 1).end()
        first = head(data, pos)
        if first is None:
            return None
        groups = first.groups()
        references = groups[0:6] + groups[9:11]
        same = _same_cells(references).match  # the cells that name the same objects, no frame inside
        counts, starts, lengths, memo = [], [], [], self.memo
        empties = set()
        while True:
            match = same(data, pos)
            if match is not None:
                g = match.groups()
            else:
                match = head(data, pos)
                if match is None:
                    break
                g = match.groups()
                if g[0:6] + g[9:11] != references:
                    return None
                g = g[6:9] + g[11:15]
            if g[0] is not None:
                count = g[0][0]
            elif g[1] is not None:
                count = int.from_bytes(g[1], "little")
            else:
                count = int.from_bytes(g[2], "little", signed=True)
                if count < 0:
                    return None
            end = match.end()
            if g[3] is None and g[4] is None:  # data: a memo reference, to b''
                index = _number(g[5], g[6])
                if index not in self.empty_bytes and index not in empties:
                    return None
                start = length = 0
                memo += 5
                pos = _tail_end(data, end, b"t\x94b", _TAIL_MEMO)
            else:
                length = g[3][0] if g[3] is not None else int.from_bytes(g[4], "little")
                start, end = end, end + length
                if length == 0:
                    empties.add(memo + 4)
                memo += 6
                pos = _tail_end(data, end, b"\x94t\x94b", _TAIL_LITERAL)
            if pos is None:
                return None
            counts.append(count)
            starts.append(start)
            lengths.append(length)
        pos = _FRAME.match(data, pos).end()
        if len(counts) < MIN_CELLS or pos >= len(data) or data[pos] != ord("e"):
            return None
        indices = [_number(references[i], references[i + 1]) for i in (0, 2, 4, 6)]
        if not all(map(self._kept, indices)):
            return None
        self._record(counts, starts, lengths)
        self._cut(mark, pos + 1)
        self.pieces.append(self._call([self._renumbered(index) for index in indices],
                                      len(self.batches.batches) - 1))
        self.firsts.append(self.memo)
        self.replaced.append((self.memo, memo))
        self.removed.append(self.removed[-1] + memo - self.memo)
        self.empty_bytes.update(empties)
        self.memo = memo
        return pos + 1

    def _record(self, counts, starts, lengths):
        batches, view = self.batches, self.view
        first = len(batches.counts)
        batches.counts.extend(counts)
        buffer, offsets = batches.buffer, batches.offsets
        for start, length in zip(starts, lengths):
            if length:
                buffer += view[start:start + length]
            offsets.append(len(buffer))
        batches.batches.append((first, len(batches.counts)))

    def _call(self, indices, number):
        """The opcodes that replace a batch: one call of the private global (not memoized)."""
        module, name = (part.encode() for part in self.batches.name)
        return b"".join([
            b"(\x8c", bytes([len(module)]), module, b"\x8c", bytes([len(name)]), name, b"\x93(",
            *map(_get_op, indices), b"J", number.to_bytes(4, "little"), b"tRe"])
