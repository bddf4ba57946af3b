"""Reading text files for tokenisation: in pieces of about a megabyte, cut only where GPT-2's pre-tokeniser starts a
new piece anyway, so that the pieces tokenise exactly as the whole file does."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

BLOCK_CHARS = 1 << 20  # a file is read in pieces of about this many characters

# Where a file may be cut without changing its tokens: after a newline, or before a space, that sits between
# two non-space characters. GPT-2's pre-tokeniser starts a new piece there in any case (a space joins the word
# after it, never the one before), so the parts on either side tokenise exactly as the whole does.
SAFE_CUT = re.compile(r"\S\n(?=\S)|\S(?= \S)")


def read_pieces(path: Path, block_chars: int = BLOCK_CHARS) -> Iterator[str]:
    """The text of `path` in pieces of about `block_chars` characters, cut only where tokenisation is unaffected.
    Binary, non-UTF-8 and unreadable files raise a ValueError that names the file."""
    decoder = codecs.getincrementaldecoder("utf-8")("strict")  # a character split across two blocks is kept whole
    carry, offset = "", 0
    try:
        with path.open("rb") as f:
            while block := f.read(block_chars):
                if b"\x00" in block:
                    raise ValueError(f"{path} looks like a binary file (it holds NUL bytes); pass UTF-8 text files.")
                try:
                    carry += decoder.decode(block)
                except UnicodeDecodeError as error:
                    raise ValueError(
                        f"{path} is not UTF-8 text ({error.reason} at byte {offset + error.start}); convert it to UTF-8."
                    ) from error
                offset += len(block)
                cut = last_safe_cut(carry)
                if cut > 0:
                    yield carry[:cut]
                    carry = carry[cut:]
            carry += decoder.decode(b"", final=True)
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text: it ends inside a character ({error.reason}).") from error
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}.") from error
    if carry:
        yield carry


def last_safe_cut(text: str) -> int:
    """The last index at which `text` may be cut (0 if none). Only the end of the text is searched, in a window
    that doubles until it holds a cut: searching a whole 1 MiB block cost as much as tokenising it."""
    window = 4096
    while True:
        start = max(len(text) - window, 0)
        last = None
        for last in SAFE_CUT.finditer(text, max(start - 1, 0)):
            pass
        if last is not None or start == 0:
            return last.end() if last else 0
        window *= 2
