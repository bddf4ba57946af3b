"""Evaluating instruction-following and language models.

- `judge_responses` with a `ChatCompletionsJudge` (any OpenAI-compatible server) or a `TransformersJudge` (a local
  causal LM): scores 0-100 against the reference answers; `parse_score` reads a score out of a free-text reply.
- `load_mmlu` and `score_mmlu`: multiple-choice accuracy in the MMLU format, per subject and overall.
- `loss_and_perplexity`: validation loss per token and perplexity; `text_loss`: the same on a plain-text file.
"""

from .judge import JUDGE_PROMPT, ChatCompletionsJudge, JudgeResult, TransformersJudge, judge_prompt, judge_responses, parse_score
from .mmlu import MMLUResult, load_mmlu, mmlu_prompt, score_mmlu
from .perplexity import loss_and_perplexity, text_loss

__all__ = [
    "JUDGE_PROMPT",
    "ChatCompletionsJudge",
    "JudgeResult",
    "TransformersJudge",
    "judge_prompt",
    "judge_responses",
    "parse_score",
    "MMLUResult",
    "load_mmlu",
    "mmlu_prompt",
    "score_mmlu",
    "loss_and_perplexity",
    "text_loss",
]
