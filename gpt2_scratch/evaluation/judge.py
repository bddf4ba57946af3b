"""LLM-as-judge: another language model scores each response from 0 to 100 against the reference output.

A judge is anything with `complete(prompt) -> str` and `describe() -> dict`. Two are provided:
- `ChatCompletionsJudge`: any server speaking OpenAI's chat-completions protocol (Ollama, vLLM, TGI, llama.cpp);
- `TransformersJudge`: a local transformers causal LM, its chat template applied when it has one.
Both decode deterministically (temperature 0 / greedy, fixed seed). Replies are free text; `parse_score` finds
the score in them, and a reply without a clear score is recorded as unparsable instead of guessed.
"""

from __future__ import annotations

import json
import math
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ..data.templates import ALPACA, PromptTemplate
from ..progress import progress_bar
from ..resources import write_atomically

JUDGE_PROMPT = (
    "You are grading a response to an instruction.\n\n"
    "{prompt}\n\n"
    "Reference answer:\n{output}\n\n"
    "Response to grade:\n{response}\n\n"
    "Rate the response on a scale from 0 to 100, where 100 means as good as the reference answer. "
    "Reply with the integer score only."
)


def judge_prompt(record: Mapping, template: PromptTemplate = ALPACA, prompt_format: str = JUDGE_PROMPT) -> str:
    """The judge's prompt for one record with a `model_response`."""
    return prompt_format.format(prompt=template.prompt(record), output=record["output"],
                                response=record["model_response"])


# --- reading a score out of a free-text reply -------------------------------------------------------------------
_NUMBER = r"(\d+(?:\.\d+)?)"
_SCALE_MENTION = re.compile(r"\b0\s*(?:-|–|to)\s*100\b", re.IGNORECASE)  # "0-100", "0 to 100": not a score
_EXPLICIT = [
    re.compile(_NUMBER + r"\s*(?:/|out of)\s*100\b", re.IGNORECASE),  # "85/100", "85 out of 100"
    re.compile(r"\bscore\b\D{0,20}?" + _NUMBER, re.IGNORECASE),  # "Score: 85", "score of **85**"
]


def parse_score(reply: str) -> float | int | None:
    """The 0-100 score in a judge's reply, or None when there is none or it is ambiguous.

    Accepted: a bare number ("85", "**85**."), "85/100", "85 out of 100", "Score: 85". Otherwise the reply must
    hold exactly one number between 0 and 100 once scale mentions such as "0 to 100" are removed."""
    text = _SCALE_MENTION.sub(" ", reply)
    for pattern in _EXPLICIT:
        match = pattern.search(text)
        if match:
            return _in_range(match.group(1))
    candidates = {_in_range(number) for number in re.findall(_NUMBER, text)} - {None}
    return candidates.pop() if len(candidates) == 1 else None


def _in_range(number: str) -> float | int | None:
    value = float(number)
    if not 0 <= value <= 100:
        return None
    return int(value) if value.is_integer() else value


# --- judges -----------------------------------------------------------------------------------------------------
@dataclass
class ChatCompletionsJudge:
    """A model behind an OpenAI-compatible chat-completions endpoint.

    `base_url` is the API root as OpenAI clients take it, e.g. "http://localhost:11434/v1" (Ollama) or
    "http://localhost:8000/v1" (vLLM); a bare "http://host:port" gets "/v1" added. `api_key` defaults to the
    OPENAI_API_KEY environment variable (local servers need none).

    One POST with urllib, not huggingface_hub's InferenceClient: with no key of its own, that client sends the
    Hugging Face token (HF_TOKEN) to whatever server the URL names, and under HF_HUB_OFFLINE=1 it refuses even a
    server on localhost (both seen with huggingface_hub 2.4; tests/test_evaluation.py holds the judge to neither)."""

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 120.0
    max_tokens: int = 64
    seed: int = 123

    @property
    def url(self) -> str:
        url = self.base_url.rstrip("/")
        if url.endswith("/chat/completions"):
            return url
        if urllib.parse.urlparse(url).path in ("", "/"):
            url += "/v1"
        return url + "/chat/completions"

    def complete(self, prompt: str) -> str:
        payload = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": 0.0,
            "top_p": 1.0,
            "seed": self.seed,
            "max_tokens": self.max_tokens,
        }
        headers = {"Content-Type": "application/json"}
        api_key = self.api_key or os.environ.get("OPENAI_API_KEY")
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        request = urllib.request.Request(self.url, data=json.dumps(payload).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as error:
            detail = error.read().decode("utf-8", "replace")[:300]
            raise RuntimeError(f"the judge endpoint {self.url} answered HTTP {error.code}: {detail}") from error
        except (urllib.error.URLError, TimeoutError, OSError) as error:
            raise RuntimeError(f"could not reach the judge endpoint {self.url} ({error}); is the server running?") from error
        try:
            return body["choices"][0]["message"]["content"] or ""
        except (KeyError, IndexError, TypeError) as error:
            raise RuntimeError(f"the judge endpoint {self.url} sent no chat completion: {str(body)[:300]}") from error

    def describe(self) -> dict:
        return {"kind": "chat-completions", "url": self.url, "model": self.model, "temperature": 0.0,
                "seed": self.seed, "max_tokens": self.max_tokens}


@dataclass
class TransformersJudge:
    """A local causal LM (a Hub name or a folder), decoding greedily; chat models get their chat template."""

    model: object
    tokenizer: object
    name: str = "local"
    max_new_tokens: int = 16
    _uses_chat_template: bool = field(init=False, default=False)

    def __post_init__(self):
        self._uses_chat_template = bool(getattr(self.tokenizer, "chat_template", None))

    @classmethod
    def from_pretrained(cls, name_or_path: str, max_new_tokens: int = 16, **model_kwargs) -> "TransformersJudge":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        from ..conversion.pretrained import load_pretrained

        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        model = load_pretrained(AutoModelForCausalLM, name_or_path, **model_kwargs)
        return cls(model=model.eval(), tokenizer=tokenizer, name=str(name_or_path), max_new_tokens=max_new_tokens)

    def complete(self, prompt: str) -> str:
        import torch

        if self._uses_chat_template:
            input_ids = self.tokenizer.apply_chat_template(
                [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt",
                return_dict=True,
            )["input_ids"]
        else:
            input_ids = self.tokenizer(prompt, return_tensors="pt")["input_ids"]
        input_ids = input_ids.to(self.model.device)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.tokenizer.eos_token_id
        with torch.no_grad():
            output = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                                         max_new_tokens=self.max_new_tokens, do_sample=False, pad_token_id=pad_id)
        return self.tokenizer.decode(output[0, input_ids.shape[1]:], skip_special_tokens=True)

    def describe(self) -> dict:
        return {"kind": "transformers", "model": self.name, "decoding": "greedy", "max_new_tokens": self.max_new_tokens,
                "chat_template": self._uses_chat_template}


# --- judging a responses file -----------------------------------------------------------------------------------
@dataclass
class JudgeResult:
    average: float | None  # over the parsable scores; None when there are none
    scores: list  # one per record, None where the reply held no score
    replies: list[str]
    judge: dict

    @property
    def num_unparsable(self) -> int:
        return sum(score is None for score in self.scores)

    def to_dict(self) -> dict:
        return {
            "judge": self.judge,
            "average": self.average,
            "num_scored": len(self.scores) - self.num_unparsable,
            "num_unparsable": self.num_unparsable,
            "items": [{"index": i, "score": s, "judge_reply": r}
                      for i, (s, r) in enumerate(zip(self.scores, self.replies))],
        }

    def save(self, path: str | os.PathLike) -> None:
        write_atomically(path, json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n")


def judge_responses(records: Sequence[Mapping], judge, template: PromptTemplate = ALPACA,
                    prompt_format: str = JUDGE_PROMPT, show_progress: bool = True) -> JudgeResult:
    """Score every record's `model_response` against its `output` with `judge`."""
    missing = [i for i, record in enumerate(records) if "model_response" not in record]
    if missing:
        raise ValueError(f"records {missing[:10]} have no 'model_response'; generate responses first.")
    replies, scores = [], []
    for record in progress_bar(records, desc="judging", disable=not show_progress):
        reply = judge.complete(judge_prompt(record, template, prompt_format))
        replies.append(reply)
        scores.append(parse_score(reply))
    parsed = [score for score in scores if score is not None]
    average = math.fsum(parsed) / len(parsed) if parsed else None
    return JudgeResult(average=average, scores=scores, replies=replies, judge=judge.describe())
