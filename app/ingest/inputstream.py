"""The byte stream the CSV parser reads: it refuses over-long lines and bytes that are not
UTF-8.

Two problems of reading CSV from a Python file object are solved here:

- A line has no length limit in CSV, so one 3 GB line would be read whole into memory.
  Every line is checked as the bytes pass through, and the first one longer than the limit
  fails the file before the parser (or `readline`) holds it.
- A row that is not UTF-8 and has the wrong number of fields makes pyarrow print a
  traceback ("Exception ignored in ...") as it hands the row to our handler. Such bytes
  fail the file here first, with one line.

Only the thread that cuts the file into blocks reads it (`app.ingest.parse`): Arrow parses
blocks of bytes, never this stream, so no thread of Arrow's calls into Python here (its
read-ahead thread once could still be inside Python at interpreter exit, which aborted the
process, and it read up to 32 blocks ahead).
"""

import codecs

from app.ingest.sources import IngestError

# Lines of the real data are under 100 bytes; a megabyte leaves room for any sane file.
DEFAULT_MAX_LINE_BYTES = 1 << 20


class LineTooLong(IngestError):
    """A line of an input file exceeds the configured limit."""


class NotUtf8(IngestError):
    """An input file holds bytes that are not UTF-8 text."""


class CheckedStream:
    """A read-only view of `raw` that raises `LineTooLong` for a line over `max_line` bytes.

    The limit counts the bytes of a line without its newline. Checking costs a few `find`
    calls per `max_line` bytes read: between two newlines at most `max_line` bytes apart,
    jumping from one to the last newline within reach crosses any clean block in two steps.
    """

    def __init__(self, raw, name, max_line=DEFAULT_MAX_LINE_BYTES):
        self._raw = raw
        self._name = name
        self._max = max_line
        self._run = 0  # bytes since the last newline
        self._offset = 0  # bytes read before the current block
        self._utf8 = codecs.getincrementaldecoder("utf-8")()

    def tell(self):
        return self._raw.tell()

    def read(self, size=-1):
        data = self._raw.read(size)
        self._check(data, 0, len(data))
        return data

    def readinto(self, buffer, start=0):
        """Fill `buffer` from `start` to its end, or to the end of the file; return how many
        bytes were read. Reading into the same buffers again spares fresh memory (and its
        page faults) per block."""
        view = memoryview(buffer)[start:]
        filled = 0
        while filled < len(view):
            count = self._raw.readinto(view[filled:])
            if not count:
                break
            filled += count
        self._check(buffer, start, start + filled)
        return filled

    def readline(self):
        """One line, read at most one byte past the limit."""
        data = self._raw.readline(self._max + 2)  # the line, its newline, maybe "\r"
        self._check(data, 0, len(data))
        return data

    def _check(self, data, start, end):
        """Check the bytes `data[start:end]` just read (none: the end of the file)."""
        self._check_utf8(data, start, end)
        self._check_lines(data, start, end)

    def _check_utf8(self, data, start, end):
        """Decode only blocks with non-ASCII bytes (the decoder carries a split character).
        All of `data` being ASCII is enough: its other bytes passed this check before."""
        try:
            if self._utf8.getstate()[0] or not data.isascii():
                self._utf8.decode(memoryview(data)[start:end], final=start == end)
            elif start == end:
                self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise NotUtf8(f"{self._name}: not UTF-8 text (at byte "
                          f"{self._offset + exc.start:,})") from None

    def _check_lines(self, data, start, end):
        began = self._offset - self._run  # where the current line began
        base = self._offset - start  # the file's offset of data[0]
        self._offset += end - start
        first = data.find(b"\n", start, end)
        if first < 0:
            self._run += end - start
            if self._run > self._max:
                self._fail(began)
            return
        if self._run + first - start > self._max:
            self._fail(began)
        last = data.rfind(b"\n", start, end)
        position = first
        while position < last:
            # The last newline within reach of this one; none means the line is too long.
            reach = data.rfind(b"\n", position + 1, min(position + self._max + 2, end))
            if reach < 0:
                self._fail(base + position + 1)
            position = reach
        self._run = end - last - 1
        if self._run > self._max:
            self._fail(base + last + 1)

    def _fail(self, start):
        # Counting lines would cost more than the check itself: the message gives the offset.
        raise LineTooLong(f"{self._name}: the line starting at byte {start:,} is longer than "
                          f"{self._max:,} bytes (MAX_LINE_BYTES)")
