"""Every checkpoint layout the package reads or writes, by name."""

from .book import BOOK, BOOK_OPENAI_COMPATIBLE
from .gguf import GGUF
from .gpt2_named import NANOGPT, SCRATCH, TRANSFORMERS
from .llmc import LLMC
from .openai_tf import OPENAI_TF

LAYOUTS = {
    layout.name: layout
    for layout in [SCRATCH, TRANSFORMERS, NANOGPT, BOOK, BOOK_OPENAI_COMPATIBLE, OPENAI_TF, LLMC, GGUF]
}

__all__ = ["LAYOUTS"]
