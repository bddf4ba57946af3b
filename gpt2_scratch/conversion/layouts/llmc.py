"""llm.c's model file (train_gpt2.py's write_model): after the header (../containers/llmc.py), every parameter in
a fixed order: wte with its rows padded to a multiple of 128, wpe, and for each kind of block parameter all blocks
in turn (llm.c keeps each kind as one (num_layers, ...) array), nn.Linear weights (out, in); last ln_f. The file has no names: the layout gives
each block's slice a name such as "qkvw[3]", after llm.c's ParameterTensors fields.
"""

from __future__ import annotations

from ..containers.llmc import VOCAB_MULTIPLE
from ..layout import ZEROS, Layout, rule
from ..transforms import PadRows

OURS = "transformer.h.{i}."


class LlmcLayout(Layout):
    def sized_rules(self, hparams):
        """The fixed order of llm.c's parameters; wte's padding depends on the vocabulary size."""
        kinds = [
            ("ln1w", "ln_1.weight"),
            ("ln1b", "ln_1.bias"),
            ("qkvw", "attn.c_attn.weight"),
            ("qkvb", "attn.c_attn.bias"),
            ("attprojw", "attn.c_proj.weight"),
            ("attprojb", "attn.c_proj.bias"),
            ("ln2w", "ln_2.weight"),
            ("ln2b", "ln_2.bias"),
            ("fcw", "mlp.c_fc.weight"),
            ("fcb", "mlp.c_fc.bias"),
            ("fcprojw", "mlp.c_proj.weight"),
            ("fcprojb", "mlp.c_proj.bias"),
        ]
        return [
            rule("transformer.wte.weight", "wte", PadRows(VOCAB_MULTIPLE, hparams["vocab_size"])),
            rule("transformer.wpe.weight", "wpe"),
            *[
                rule(OURS + ours, theirs + "[{i}]", fallback=ZEROS if theirs == "qkvb" else None)
                for theirs, ours in kinds
            ],
            rule("transformer.ln_f.weight", "lnfw"),
            rule("transformer.ln_f.bias", "lnfb"),
        ]

    def hparams_from_metadata(self, metadata):
        header = metadata.get("llmc_header")
        if header is None:
            return {}
        return {
            "n_positions": header[2],
            "vocab_size": header[3],
            "n_layer": header[4],
            "n_head": header[5],
            "n_embd": header[6],
        }


LLMC = LlmcLayout(
    "llmc",
    "llm.c's .bin: 256-int32 header, then all parameters in a fixed order, vocabulary padded to a multiple of 128",
    [],  # built per model size by sized_rules
    block_major=False,
    tied_head_only=True,
    container="llmc",
    weights_file="model.bin",
)
