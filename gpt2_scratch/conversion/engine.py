"""The engine: apply any layout in either direction, one tensor at a time.

Import: name the checkpoint's tensors as the layout does (`normalize_name`), work out the hyperparameters,
check every expected tensor against the checkpoint's metadata (missing, unexpected, wrong shape: all reported
in one error), then yield our tensors one by one. Export: yield their tensors one by one from a function
that reads ours. Neither direction holds more than one rule's tensors at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from .hparams import DEFAULT_HPARAMS, LM_HEAD, SCORE, TOKEN_EMBEDDING, describe, our_shapes
from .layout import EXACT_GELU, BoundRule, Layout
from .layouts import LAYOUTS
from .sources import Checkpoint

SHOWN_PER_KIND = 12  # an error lists this many names of each kind, then counts the rest


class AssumedHyperparametersWarning(UserWarning):
    """A checkpoint does not record hyperparameters that change its logits; the message names the values assumed."""


class IncompleteCheckpointWarning(UserWarning):
    """A converted checkpoint lacks something its users will need (a tokenizer); the message says how to add it."""


class LayoutMismatchError(ValueError):
    """A checkpoint's tensors do not fit a layout; the message lists every difference."""

    def __init__(self, layout: Layout, origin: str, hparams: dict | None, problems: dict[str, list[str]]):
        self.layout, self.problems = layout, problems
        lines = [f"{origin} does not match the {layout.name!r} layout ({layout.description})"]
        if hparams is not None:
            lines[0] += f" for a model with {describe(hparams)}"
        lines[0] += ":"
        super().__init__("\n".join(lines + problem_lines(problems)))

    @property
    def count(self) -> int:
        return sum(len(items) for items in self.problems.values())


def problem_lines(problems: dict[str, list[str]]) -> list[str]:
    """One line per kind of problem ("missing", "unexpected", ...) that has any, naming the first few."""
    lines = []
    for kind, items in problems.items():
        if items:
            shown = items[:SHOWN_PER_KIND]
            more = f" ... and {len(items) - len(shown)} more" if len(items) > len(shown) else ""
            lines.append(f"  {kind} ({len(items)}): " + "; ".join(shown) + more)
    return lines


class BoundCheckpoint:
    """A checkpoint whose tensor names have been normalised the way a layout writes them."""

    def __init__(self, layout: Layout, checkpoint: Checkpoint):
        self.layout, self.checkpoint = layout, checkpoint
        self.raw_name: dict[str, str] = {}
        self.collisions: list[str] = []
        for raw in checkpoint.tensors.names():
            name = layout.normalize_name(raw)
            if name in self.raw_name:
                self.collisions.append(f"{raw} and {self.raw_name[name]} both mean {name}")
            self.raw_name[name] = raw

    def has(self, name: str) -> bool:
        return name in self.raw_name

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.checkpoint.tensors.shape(self.raw_name[name]))

    def read(self, name: str) -> torch.Tensor:
        return self.checkpoint.tensors.read(self.raw_name[name])


# ---------------------------------------------------------------------------------------------- hyperparameters


def infer_hparams(bound: BoundCheckpoint, overrides: dict | None = None) -> dict:
    """Hyperparameters from the tensors' shapes, then the format's metadata, then the caller's overrides."""
    layout = bound.layout
    from_metadata = layout.hparams_from_metadata(bound.checkpoint.metadata)
    defaults = {**DEFAULT_HPARAMS, "activation_function": layout.activations[0]}  # what the format's programs compute
    hparams = {**defaults, **from_shapes(bound, {**defaults, **from_metadata}), **from_metadata}
    hparams.update(overrides or {})
    if "n_head" not in from_metadata and "n_head" not in (overrides or {}):
        hparams["n_head"] = guess_heads(hparams["n_embd"], layout)
    if hparams["num_labels"]:
        hparams["tie_word_embeddings"] = True  # a classifier has no LM head to tie or untie
    elif "tie_word_embeddings" not in from_metadata and "tie_word_embeddings" not in (overrides or {}):
        hparams["tie_word_embeddings"] = head_is_tied(bound, hparams)
    return hparams


def from_shapes(bound: BoundCheckpoint, hparams: dict) -> dict:
    """What the shapes tell: vocabulary, width, positions, depth, MLP width, QKV bias."""
    rules = {r.ours: r for r in bound.layout.rules_for(hparams) if r.ours}

    def our_shape(our_key: str, block: int = 0):
        r = rules.get(our_key)
        names = [name.format(i=block) for name in r.theirs] if r else []
        if not names or not all(bound.has(name) for name in names):
            return None
        return r.transform.our_shape([bound.shape(name) for name in names])

    found = {}
    if (wte := our_shape(TOKEN_EMBEDDING)) and len(wte) == 2:
        found["vocab_size"], found["n_embd"] = wte
    if (wpe := our_shape("transformer.wpe.weight")) and len(wpe) == 2:
        found["n_positions"] = wpe[0]
    found["n_layer"] = 0
    while our_shape("transformer.h.{i}.ln_1.weight", found["n_layer"]):
        found["n_layer"] += 1
    if (fc := our_shape("transformer.h.{i}.mlp.c_fc.weight")) and "n_embd" in found:
        found["n_inner"] = None if fc[0] == 4 * found["n_embd"] else fc[0]
    found["qkv_bias"] = our_shape("transformer.h.{i}.attn.c_attn.bias") is not None
    found["num_labels"] = classifier_labels(bound, found.get("vocab_size"))
    return found


def classifier_labels(bound: BoundCheckpoint, vocab_size: int | None) -> int | None:
    """The number of classes when the checkpoint has a classifier head: the format's classifier head tensor is
    present, and (where it shares its name with the LM head, as the course's out_head does) is not vocabulary-sized."""
    if bound.layout.classifier_head is None:
        return None
    head = next(r for r in bound.layout.classifier_head(1) if r.ours == SCORE)
    name = head.theirs[0]
    if not bound.has(name) or len(bound.shape(name)) != 2:
        return None
    rows = bound.shape(name)[0]
    shares_lm_head_name = any(r.ours == LM_HEAD and name in r.theirs for r in bound.layout.rules)
    return None if shares_lm_head_name and rows == vocab_size else rows


def guess_heads(width: int, layout: Layout) -> int:
    """Shapes do not tell the number of heads; every GPT-2 size uses heads of 64 channels."""
    if width % 64:
        raise ValueError(
            f"the {layout.name!r} layout does not record the number of attention heads, and the width {width} is "
            "not a multiple of GPT-2's 64 channels per head: pass n_head=... (--n-head on the command line)."
        )
    return width // 64


def assumption_note(bound: BoundCheckpoint, hparams: dict, overrides: dict | None = None) -> str | None:
    """What was assumed for a checkpoint that does not record its number of heads (nor, without any metadata, its
    activation and LayerNorm epsilon), and how to pass the true values; None when nothing was assumed."""
    recorded = {**bound.layout.hparams_from_metadata(bound.checkpoint.metadata), **(overrides or {})}
    if "n_head" in recorded:
        return None
    note = (
        f"{bound.checkpoint.origin} does not record its number of attention heads: assumed n_head={hparams['n_head']} "
        f"(width {hparams['n_embd']} / 64 channels per head, as in every GPT-2 size). If the model has another "
        "number of heads, its logits will be wrong: pass --n-head N (n_head=N in Python)."
    )
    unrecorded = [name for name in ("activation_function", "layer_norm_epsilon") if name not in recorded]
    if unrecorded:
        assumed = ", ".join(f"{name}={hparams[name]!r}" for name in unrecorded)
        note += f" Nor does it record {' or '.join(unrecorded)}: assumed GPT-2's {assumed} (pass them in Python)."
    return note


def head_is_tied(bound: BoundCheckpoint, hparams: dict) -> bool:
    """Tied when the format has no LM head of its own, or stores one equal to the token embedding."""
    head_rules = [r for r in bound.layout.rules_for(hparams) if r.ours == LM_HEAD]
    embedding_rules = [r for r in bound.layout.rules_for(hparams) if r.ours == TOKEN_EMBEDDING]
    if not head_rules or not all(bound.has(name) for name in head_rules[0].theirs):
        return True
    head = head_rules[0].transform.to_ours([bound.read(n) for n in head_rules[0].theirs])
    embedding = embedding_rules[0].transform.to_ours([bound.read(n) for n in embedding_rules[0].theirs])
    return head.shape == embedding.shape and torch.equal(head, embedding)


# ---------------------------------------------------------------------------------------------- checking


def find_problems(bound: BoundCheckpoint, hparams: dict) -> dict[str, list[str]]:
    """Every way the checkpoint differs from what the layout expects for these hyperparameters."""
    missing, wrong_shape, claimed = [], [], set()
    ours_present = our_shapes(hparams)
    for r in bound.layout.bind(hparams):
        needed = r.ours is not None and r.ours in ours_present
        for name, expected in zip(r.theirs, r.their_shapes, strict=True):
            if bound.has(name):
                claimed.add(name)
                if bound.shape(name) != expected:
                    wrong_shape.append(f"{name} is {list(bound.shape(name))}, expected {list(expected)}")
            elif needed:
                missing.append(f"{name} {list(expected)}")
        tolerated = r.fallback is not None or r.ours == LM_HEAD  # a tied head's stored copy is harmless
        if not needed and not tolerated and any(bound.has(name) for name in r.theirs):
            claimed.difference_update(r.theirs)  # present though the hyperparameters say it should not be
    unexpected = [bound.raw_name[n] for n in bound.raw_name if n not in claimed and not bound.layout.is_ignored(n)]
    return {"missing": missing, "unexpected": unexpected, "wrong shape": wrong_shape, "ambiguous": bound.collisions}


def check(bound: BoundCheckpoint, hparams: dict) -> None:
    problems = find_problems(bound, hparams)
    if any(problems.values()):
        raise LayoutMismatchError(bound.layout, bound.checkpoint.origin, hparams, problems)


# ---------------------------------------------------------------------------------------------- both directions


def import_tensors(bound: BoundCheckpoint, hparams: dict) -> Iterator[tuple[str, torch.Tensor]]:
    """Our tensors, one by one, in our order (call `check` first)."""
    ours_present = our_shapes(hparams)
    for r in bound.layout.bind(hparams):
        if r.ours in ours_present:
            yield r.ours, r.transform.to_ours([bound.read(name) for name in r.theirs + r.reads])


def our_reader(bound: BoundCheckpoint, hparams: dict) -> Callable[[str], torch.Tensor]:
    """Read any one of our tensors on demand (a tied LM head reads the token embedding)."""
    by_our_key = {r.ours: r for r in bound.layout.bind(hparams) if r.ours}

    def read(our_key: str) -> torch.Tensor:
        if our_key == LM_HEAD and hparams["tie_word_embeddings"]:
            our_key = TOKEN_EMBEDDING
        r = by_our_key[our_key]
        return r.transform.to_ours([bound.read(name) for name in r.theirs + r.reads])

    return read


@dataclass
class ExportItem:
    """One of their tensors to write, with the name and shape known before any data is produced."""

    name: str
    shape: tuple[int, ...]
    rule: BoundRule


def exported_rules(layout: Layout, hparams: dict) -> list[BoundRule]:
    """The rules an export of a model with these hyperparameters applies, in the format's order."""
    if not layout.can_export:
        raise ValueError(f"the {layout.name!r} layout can be read but not written.")
    check_representable(layout, hparams)
    ours_present = our_shapes(hparams)
    return [r for r in layout.bind(hparams) if r.ours in ours_present or r.fallback is not None]


def check_representable(layout: Layout, hparams: dict) -> None:
    """Refuse to write a model in a layout whose programs would compute another model from it."""
    if layout.tied_head_only and not hparams["tie_word_embeddings"] and not hparams["num_labels"]:
        raise ValueError(
            f"the {layout.name!r} layout's LM head is always its token embedding, so a model with an untied LM head "
            "cannot be written in it without losing the head; choose another layout."
        )
    activation = hparams["activation_function"]
    if activation not in layout.activations:
        able = [other.name for other in LAYOUTS.values() if other.can_export and activation in other.activations]
        raise ValueError(
            f"the {layout.name!r} layout is read by programs that compute {gelu_name(layout.activations[0])}, and this "
            f"model computes {gelu_name(activation)} (activation_function={activation!r}): written in it, it would "
            f"give other outputs. Choose a layout that can hold it: {', '.join(able)}."
        )


def gelu_name(activation: str) -> str:
    return "the exact GELU" if activation in EXACT_GELU else "GELU's tanh approximation"


def export_plan(layout: Layout, hparams: dict) -> list[ExportItem]:
    """Their tensors' names and shapes, in the format's order."""
    return [
        ExportItem(name, shape, r)
        for r in exported_rules(layout, hparams)
        for name, shape in zip(r.theirs, r.their_shapes, strict=True)
    ]


def export_tensors(
    layout: Layout, hparams: dict, read_ours: Callable[[str], torch.Tensor]
) -> Iterator[tuple[str, torch.Tensor]]:
    """Their tensors, one by one, in the format's order (the order of `export_plan`)."""
    ours_present = our_shapes(hparams)
    for r in exported_rules(layout, hparams):
        if r.ours in ours_present:
            tensors = r.transform.to_theirs(read_ours(r.ours))
        else:
            tensors = r.fallback.their_tensors(r, hparams, read_ours)
        yield from zip(r.theirs, tensors, strict=True)


def state_dict_reader(state_dict: dict) -> Callable[[str], torch.Tensor]:
    return lambda key: state_dict[key]


def bind_checked(layout: Layout, checkpoint: Checkpoint, overrides: dict | None = None) -> tuple[BoundCheckpoint, dict]:
    """Bind a checkpoint to a layout, infer its hyperparameters and check it, or raise one error with everything."""
    bound = BoundCheckpoint(layout, checkpoint)
    try:
        hparams = infer_hparams(bound, overrides)
    except (KeyError, TypeError, IndexError) as error:
        raise LayoutMismatchError(layout, checkpoint.origin, None, {"unreadable": [repr(error)]}) from None
    check(bound, hparams)
    return bound, hparams
