"""The outside oracle: OpenAI's own tokenizer (tiktoken's `gpt2` encoding) built from local files.

`tiktoken.get_encoding("gpt2")` downloads its files; this builds the same Encoding from GPT-2's encoder.json
and vocab.bpe on disk, the pinned sha256 checked, with tiktoken's own pattern and loader. Tests and the
throughput benchmark compare our tokenizers with it.
"""

from __future__ import annotations

import os

from ..resources import RESOURCES, fetch
from .bpe import ENDOFTEXT


def tiktoken_gpt2(path: str | os.PathLike | None = None):
    """tiktoken's `gpt2` Encoding from a folder holding encoder.json + vocab.bpe (None: fetch them)."""
    import tiktoken  # imported when called: importing the package stays light
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext.openai_public import r50k_pat_str

    encoder_json, vocab_bpe = RESOURCES["gpt2-encoder.json"], RESOURCES["gpt2-vocab.bpe"]
    mergeable_ranks = data_gym_to_mergeable_bpe_ranks(
        vocab_bpe_file=str(fetch(vocab_bpe.name, path, verify=True)),
        encoder_json_file=str(fetch(encoder_json.name, path, verify=True)),
        vocab_bpe_hash=vocab_bpe.sha256,
        encoder_json_hash=encoder_json.sha256,
    )
    return tiktoken.Encoding(
        name="gpt2-local",
        pat_str=r50k_pat_str,
        mergeable_ranks=mergeable_ranks,
        special_tokens={ENDOFTEXT: 50256},
        explicit_n_vocab=50257,
    )
