"""Every transform is reversible and predicts its shapes: what the engine's checks and streaming rely on."""

import pytest
import torch

from gpt2_scratch.conversion.transforms import (
    IDENTITY,
    SPLIT_QKV,
    TF_CONV,
    TRANSPOSE,
    DropLeadingAxis,
    FoldHeadBias,
    PadRows,
)

CASES = [  # (transform, one of our tensors)
    (IDENTITY, torch.randn(5, 3)),
    (TRANSPOSE, torch.randn(12, 4)),
    (DropLeadingAxis(), torch.randn(4, 12)),
    (TF_CONV, torch.randn(12, 4)),
    (SPLIT_QKV, torch.randn(12, 4)),
    (SPLIT_QKV, torch.randn(12)),
    (PadRows(128, vocab_size=300), torch.randn(300, 8)),
]


@pytest.mark.parametrize("transform, ours", CASES, ids=[f"{t.name}-{tuple(o.shape)}" for t, o in CASES])
def test_ours_to_theirs_and_back_is_exact_and_shapes_are_predicted(transform, ours):
    theirs = transform.to_theirs(ours)
    assert len(theirs) == transform.arity
    assert [tuple(t.shape) for t in theirs] == [tuple(s) for s in transform.their_shapes(tuple(ours.shape))]
    assert transform.our_shape([tuple(t.shape) for t in theirs]) == tuple(ours.shape)
    assert torch.equal(transform.to_ours(theirs), ours)


def test_specific_layouts_of_their_tensors():
    linear = torch.arange(12.0).reshape(4, 3)  # nn.Linear (out=4, in=3)
    assert torch.equal(TF_CONV.to_theirs(linear)[0], linear.t()[None])  # TF: (1, in, out)
    padded = PadRows(128, vocab_size=300).to_theirs(torch.ones(300, 2))[0]
    assert padded.shape == (384, 2) and padded[300:].abs().sum() == 0  # llm.c pads with zero rows
    q, k, v = SPLIT_QKV.to_theirs(torch.arange(6.0))
    assert q.tolist() == [0, 1] and k.tolist() == [2, 3] and v.tolist() == [4, 5]


def test_folding_a_classifier_bias_keeps_the_logits_and_a_zero_bias_changes_nothing():
    generator = torch.Generator().manual_seed(0)
    weight, bias = torch.randn(2, 16, generator=generator), torch.randn(2, generator=generator)
    shift, normalized = torch.randn(16, generator=generator), torch.randn(5, 16, generator=generator)
    fold = FoldHeadBias(num_labels=2)
    folded_shift = fold.to_ours([shift, bias, weight])
    assert torch.allclose((normalized + folded_shift) @ weight.t(), (normalized + shift) @ weight.t() + bias, atol=1e-5)
    assert fold.to_ours([shift, torch.zeros(2), weight]) is shift
    exported_shift, exported_bias = fold.to_theirs(shift)
    assert exported_shift is shift and torch.equal(exported_bias, torch.zeros(2))
    with pytest.raises(ValueError, match="too close to singular"):
        fold.to_ours([shift, bias, torch.ones(2, 16)])  # two identical rows: no v can give them different biases
