"""A layout is data: the rules that relate our tensor names to a checkpoint format's names.

Each `Rule` says: our tensor `ours` (a pattern where "{i}" is the block index) corresponds to their tensor(s)
`theirs` through the reversible `transform`. A rule may carry a `fallback`: what to write when we have no
tensor for it (a bias our model does without, a tied LM head the format stores anyway, a mask buffer the
format keeps in its state dict). The engine (engine.py) applies a layout in either direction.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .hparams import LM_HEAD, SCORE, TOKEN_EMBEDDING, our_shapes, vocab_rows
from .transforms import IDENTITY, Chain, Shape, Transform, VocabularyPadding

# The MLP activations ScratchGPT2 computes, in transformers' names (config.activation_function): GELU's tanh
# approximation, GPT-2's (two names, one function), and the exact GELU (erf), nanoGPT's nn.GELU().
TANH_GELU = ("gelu_new", "gelu_pytorch_tanh")
EXACT_GELU = ("gelu",)
ANY_GELU = TANH_GELU + EXACT_GELU


class Fallback:
    """How to produce their tensors for a rule when we hold no tensor of ours for it."""

    name = "fallback"

    def their_tensors(self, rule: BoundRule, hparams: dict, read_ours: Callable[[str], torch.Tensor]):
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class Zeros(Fallback):
    """A bias the format always has but our model was built without: zero is the same function."""

    name = "zeros"

    def their_tensors(self, rule, hparams, read_ours):
        return [torch.zeros(shape) for shape in rule.their_shapes]


class CopyOf(Fallback):
    """A tied weight the format stores as its own tensor (the book's `out_head` next to `tok_emb`)."""

    def __init__(self, our_key: str):
        self.our_key = our_key
        self.name = f"copy of {our_key}"

    def their_tensors(self, rule, hparams, read_ours):
        return rule.transform.to_theirs(read_ours(self.our_key))


class CausalMask(Fallback):
    """The (n_positions, n_positions) mask buffer a format keeps in every block: 1 above the diagonal."""

    name = "causal mask"

    def buffer_shape(self, hparams: dict) -> Shape:
        return (hparams["n_positions"], hparams["n_positions"])

    def their_tensors(self, rule, hparams, read_ours):
        return [torch.triu(torch.ones(self.buffer_shape(hparams)), diagonal=1)]


ZEROS = Zeros()
CAUSAL_MASK = CausalMask()


@dataclass(frozen=True)
class Rule:
    ours: str | None  # our key pattern; None for a buffer only their format has
    theirs: tuple[str, ...]
    transform: Transform = IDENTITY
    fallback: Fallback | None = None
    reads: tuple[str, ...] = ()  # their tensors the import also needs, written on export by another rule

    @property
    def per_block(self) -> bool:
        return "{i}" in (self.ours or "") or any("{i}" in name for name in self.theirs)


def rule(
    ours: str | None, theirs: str | tuple[str, ...], transform: Transform = IDENTITY, fallback=None, reads=()
) -> Rule:
    return Rule(ours, (theirs,) if isinstance(theirs, str) else tuple(theirs), transform, fallback, tuple(reads))


@dataclass(frozen=True)
class BoundRule:
    """A rule for one block of one model size: names filled in and shapes known."""

    ours: str | None
    theirs: tuple[str, ...]
    transform: Transform
    fallback: Fallback | None
    our_shape: Shape | None
    their_shapes: tuple[Shape, ...]
    reads: tuple[str, ...] = ()


@dataclass
class Layout:
    """A checkpoint format's names, in the order the format stores them."""

    name: str
    description: str
    rules: list[Rule]
    ignored: tuple[str, ...] = ()  # regexes of their names that carry nothing we keep (old buffers)
    normalize_name: Callable[[str], str] = str  # their name as the rules write it, e.g. without an optional prefix
    block_major: bool = True  # False: all blocks' ln_1 weights, then all ln_1 biases, ... (llm.c's order)
    can_export: bool = True
    # The format's LM head is always its token embedding: it stores none of its own, or its programs tie the one
    # it stores (nanoGPT). An untied head cannot be written in it.
    tied_head_only: bool = False
    # The activations the format's programs compute, the first being the one an import takes when the format
    # records none; a model with another one cannot be written in it.
    activations: tuple[str, ...] = TANH_GELU
    # The rules of a classifier head for `num_labels` classes, replacing the LM head's rule and any rule with the
    # same `ours`; None where the format has no classifier head.
    classifier_head: Callable[[int], list[Rule]] | None = None
    container: str = "safetensors"  # how an export is stored: "safetensors", "torch" (a pickle), "llmc", "gguf"
    keeps_vocab_padding: bool = False  # stores our padded vocabulary's rows as they are (our own layout only)
    weights_file: str = "model.safetensors"  # the weights' file name inside an exported folder

    def sized_rules(self, hparams: dict) -> list[Rule]:
        """The rules for a model of this size; a layout whose transforms depend on the size overrides this."""
        return self.rules

    def rules_for(self, hparams: dict) -> list[Rule]:
        """The rules for a model of this size, with a language-model or a classifier head."""
        rules = self.sized_rules(hparams)
        if not hparams.get("num_labels"):
            return rules
        if self.classifier_head is None:
            raise ValueError(f"the {self.name!r} layout has no classifier head; a sequence classifier cannot use it.")
        head = self.classifier_head(hparams["num_labels"])
        replaced = {r.ours for r in head} | {LM_HEAD}
        return [r for r in rules if r.ours not in replaced] + head

    def bind(self, hparams: dict) -> list[BoundRule]:
        """Every rule with block indices filled in and shapes computed, in the format's storage order."""
        shapes = our_shapes(hparams, optional_too=True)
        rules = self.rules_for(hparams)
        blocks = range(hparams["n_layer"])
        if self.block_major:
            order = [(r, None) for r in rules if not r.per_block and not _is_final(r)]
            order += [(r, i) for i in blocks for r in rules if r.per_block]
            order += [(r, None) for r in rules if not r.per_block and _is_final(r)]
        else:
            order = [(r, i) for r in rules for i in (blocks if r.per_block else [None])]
        return [self._bind_one(r, i, shapes, hparams) for r, i in order]

    def _bind_one(self, r: Rule, i: int | None, shapes: dict, hparams: dict) -> BoundRule:
        fill = (lambda name: name.format(i=i)) if i is not None else (lambda name: name)
        ours = fill(r.ours) if r.ours else None
        transform = self._transform(r, ours, hparams)
        if ours is not None:
            their_shapes = tuple(transform.their_shapes(shapes[ours]))
        else:  # a buffer only they have: its fallback knows its shape
            their_shapes = (r.fallback.buffer_shape(hparams),)
        return BoundRule(
            ours,
            tuple(fill(n) for n in r.theirs),
            transform,
            r.fallback,
            shapes.get(ours),
            tuple(tuple(s) for s in their_shapes),
            tuple(fill(n) for n in r.reads),
        )

    def _transform(self, r: Rule, ours: str | None, hparams: dict) -> Transform:
        """The rule's transform; for our padded embedding or LM head in a format without our padding, followed by
        adding the padding rows (import) or dropping them (export)."""
        rows = vocab_rows(hparams)
        if ours not in (TOKEN_EMBEDDING, LM_HEAD) or rows == hparams["vocab_size"] or self.keeps_vocab_padding:
            return r.transform
        return Chain(r.transform, VocabularyPadding(hparams["vocab_size"], rows))

    def is_ignored(self, name: str) -> bool:
        return any(re.fullmatch(pattern, name) for pattern in self.ignored)

    def hparams_from_metadata(self, metadata: dict) -> dict:
        """Hyperparameters the format records (config.json, hparams.json, a header); overridden per layout."""
        return {}

    def write_side_files(self, folder, hparams: dict, dtype: torch.dtype) -> None:
        """Files an exported folder has beside the weights (config.json, ...); overridden per layout."""

    def wrap_state_dict(self, state_dict: dict, hparams: dict) -> dict:
        """What a pickled format saves around its state dict (nanoGPT's model_args, ...)."""
        return state_dict


def _is_final(r: Rule) -> bool:
    """Rules outside the blocks that come after them: the final LayerNorm and the head."""
    return r.ours is not None and r.ours.startswith(("transformer.ln_f", LM_HEAD, SCORE))
