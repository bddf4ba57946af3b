"""Named, reversible operations that turn a checkpoint's tensors into ours and back.

A transform relates one of our tensors to one or more of theirs (fused query/key/value splits into three).
It knows three things: how to make ours from theirs, how to make theirs from ours, and what shapes theirs
must have given ours, so that a whole checkpoint can be checked from its metadata before any data is read.
"""

from __future__ import annotations

import torch

from ..modeling.configuration_scratch_gpt2 import padded_vocab_size

Shape = tuple[int, ...]


class Transform:
    """One of our tensors <-> `arity` of theirs."""

    name = "transform"
    arity = 1

    def to_ours(self, theirs: list[torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def to_theirs(self, ours: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def their_shapes(self, our_shape: Shape) -> list[Shape]:
        raise NotImplementedError

    def our_shape(self, their_shapes: list[Shape]) -> Shape:
        raise NotImplementedError

    def __repr__(self) -> str:
        return self.name


class OneToOne(Transform):
    """A transform between one tensor of theirs and one of ours; subclasses define the four single-tensor maps."""

    def forward(self, tensor: torch.Tensor) -> torch.Tensor:  # theirs -> ours
        raise NotImplementedError

    def backward(self, tensor: torch.Tensor) -> torch.Tensor:  # ours -> theirs
        raise NotImplementedError

    def forward_shape(self, shape: Shape) -> Shape:
        raise NotImplementedError

    def backward_shape(self, shape: Shape) -> Shape:
        raise NotImplementedError

    def to_ours(self, theirs):
        return self.forward(theirs[0])

    def to_theirs(self, ours):
        return [self.backward(ours)]

    def their_shapes(self, our_shape):
        return [self.backward_shape(our_shape)]

    def our_shape(self, their_shapes):
        return self.forward_shape(their_shapes[0])


class Identity(OneToOne):
    name = "identity"

    def forward(self, tensor):
        return tensor

    backward = forward

    def forward_shape(self, shape):
        return tuple(shape)

    backward_shape = forward_shape


class Transpose(OneToOne):
    """Conv1D (in, out) <-> nn.Linear (out, in)."""

    name = "transpose"

    def forward(self, tensor):
        return tensor.t().contiguous()

    backward = forward

    def forward_shape(self, shape):
        return tuple(reversed(shape))

    backward_shape = forward_shape


class DropLeadingAxis(OneToOne):
    """OpenAI's TensorFlow weights carry a leading axis of 1 (they were 1x1 convolutions)."""

    name = "drop-leading-axis"

    def forward(self, tensor):
        return tensor[0]

    def backward(self, tensor):
        return tensor.unsqueeze(0)

    def forward_shape(self, shape):
        return tuple(shape[1:])

    def backward_shape(self, shape):
        return (1, *shape)


class PadRows(OneToOne):
    """A vocabulary padded with zero rows up to a multiple of `multiple` (llm.c pads to 128 for speed).

    The padded size cannot tell the true vocabulary size, so `vocab_size` comes from the layout's metadata.
    """

    name = "pad-rows"

    def __init__(self, multiple: int, vocab_size: int):
        self.multiple, self.vocab_size = multiple, vocab_size

    def padded(self, rows: int) -> int:
        return padded_vocab_size(rows, self.multiple)

    def forward(self, tensor):
        return tensor[: self.vocab_size]

    def backward(self, tensor):
        padding = tensor.new_zeros(self.padded(tensor.shape[0]) - tensor.shape[0], *tensor.shape[1:])
        return torch.cat([tensor, padding])

    def forward_shape(self, shape):
        return (self.vocab_size, *shape[1:])

    def backward_shape(self, shape):
        return (self.padded(shape[0]), *shape[1:])


class VocabularyPadding(OneToOne):
    """Our padded vocabulary (config.pad_vocab_size_to_multiple_of) <-> a format that has none: the import adds the
    zero rows up to `rows`, the export drops every row past `vocab_size`."""

    name = "vocabulary-padding"

    def __init__(self, vocab_size: int, rows: int):
        self.vocab_size, self.rows = vocab_size, rows

    def forward(self, tensor):
        return torch.cat([tensor, tensor.new_zeros(self.rows - tensor.shape[0], *tensor.shape[1:])])

    def backward(self, tensor):
        return tensor[: self.vocab_size].clone()  # a view would keep (and torch.save write) the padding rows

    def forward_shape(self, shape):
        return (self.rows, *shape[1:])

    def backward_shape(self, shape):
        return (self.vocab_size, *shape[1:])


class Chain(OneToOne):
    """Several one-to-one steps applied in order from theirs to ours (and in reverse from ours to theirs)."""

    def __init__(self, *steps: OneToOne):
        self.steps = steps
        self.name = "+".join(step.name for step in steps)

    def forward(self, tensor):
        for step in self.steps:
            tensor = step.forward(tensor)
        return tensor

    def backward(self, tensor):
        for step in reversed(self.steps):
            tensor = step.backward(tensor)
        return tensor

    def forward_shape(self, shape):
        for step in self.steps:
            shape = step.forward_shape(shape)
        return shape

    def backward_shape(self, shape):
        for step in reversed(self.steps):
            shape = step.backward_shape(shape)
        return shape


class SplitQKV(Transform):
    """Our fused query/key/value projection (3d, ...) <-> their three separate ones (d, ...), in Q, K, V order."""

    name = "split-qkv"
    arity = 3

    def to_ours(self, theirs):
        return torch.cat(theirs, dim=0)

    def to_theirs(self, ours):
        return [part.contiguous() for part in ours.chunk(3, dim=0)]

    def their_shapes(self, our_shape):
        return [(our_shape[0] // 3, *our_shape[1:])] * 3

    def our_shape(self, their_shapes):
        return (sum(shape[0] for shape in their_shapes), *their_shapes[0][1:])


IDENTITY = Identity()
TRANSPOSE = Transpose()
SPLIT_QKV = SplitQKV()
TF_CONV = Chain(DropLeadingAxis(), Transpose())  # OpenAI's TF (1, in, out) <-> our (out, in)


class FoldHeadBias(Transform):
    """A classifier head's bias, moved into the final LayerNorm's shift (ScratchGPT2's and transformers' GPT-2
    classifier heads have no bias).

    The head computes W h + b on h = LN(x), whose last step adds the shift s. For v with W v = b,
    W (LN(x) + v) = W h + b: the shift s + v and no bias give the same logits. With fewer classes than
    channels, v = pinv(W) b = W^T (W W^T)^-1 b solves it exactly (computed in float64). Their tensors are (shift, bias),
    and the import also reads W; the export writes the shift as it is and a zero bias, so that our
    model -> their format -> our model is bit-identical.
    """

    name = "fold-head-bias"
    arity = 2

    def __init__(self, num_labels: int):
        self.num_labels = num_labels

    def to_ours(self, theirs):
        shift, bias, weight = theirs
        if not bias.any():
            return shift
        w = weight.double()
        v = torch.linalg.pinv(w) @ bias.double()  # the least-norm v; exact unless W's rows are dependent
        error = (w @ v - bias.double()).abs().max().item()
        if error > 1e-6 * max(1.0, bias.abs().max().item()):
            raise ValueError(
                f"the classifier head's weight is too close to singular to move its bias into the final LayerNorm "
                f"(residual {error:.2g}); this checkpoint cannot be converted exactly."
            )
        return (shift.double() + v).to(shift.dtype)

    def to_theirs(self, ours):
        return [ours, ours.new_zeros(self.num_labels)]

    def their_shapes(self, our_shape):
        return [tuple(our_shape), (self.num_labels,)]

    def our_shape(self, their_shapes):
        return tuple(their_shapes[0])
