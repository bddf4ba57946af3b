"""The request bodies the server reads, as pydantic models of OpenAI's shapes (fields it has no use for are ignored;
those whose meaning it does not implement are refused unless left at their defaults)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

# Fields of OpenAI's requests whose behaviour this server does not implement, with the values that mean "off".
NOT_IMPLEMENTED = {
    "logprobs": (None, False, 0), "top_logprobs": (None, 0), "echo": (None, False), "suffix": (None, ""),
    "presence_penalty": (None, 0), "frequency_penalty": (None, 0), "logit_bias": (None, {}), "tools": (None, []),
    "best_of": (None, 1), "response_format": (None, {"type": "text"}),
}


class Request(BaseModel):
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def refuse_what_is_not_implemented(cls, data):
        if isinstance(data, dict):
            for name, off in NOT_IMPLEMENTED.items():
                if name in data and data[name] not in off:
                    raise ValueError(f"{name} is not supported by this server; leave it out")
        return data


class StreamOptions(BaseModel):
    include_usage: bool = False


class SamplingRequest(Request):
    """What completions and chat completions share: the model, how many tokens, how to pick them."""

    model: str
    max_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)  # None: 1, as OpenAI's default
    top_p: float | None = Field(None, gt=0, le=1)
    top_k: int | None = Field(None, ge=0)  # not OpenAI's (pass it in extra_body); 0 or None: every token
    n: int = Field(1, ge=1, le=64)
    stop: str | list[str] | None = None
    seed: int | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None

    @model_validator(mode="after")
    def check_stop(self):
        stops = self.stop_strings
        if len(stops) > 4 or not all(stops):
            raise ValueError("stop takes up to 4 non-empty strings")
        return self

    @property
    def stop_strings(self) -> list[str]:
        return [self.stop] if isinstance(self.stop, str) else list(self.stop or [])


class CompletionRequest(SamplingRequest):
    prompt: str | list[str] | list[int] | list[list[int]]


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]
    input: str | None = None  # not OpenAI's: an instruction's input, which the prompt formats set apart

    def for_template(self) -> dict:
        content = self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)
        message = {"role": self.role, "content": content}
        return message if self.input is None else {**message, "input": self.input}


class ChatCompletionRequest(SamplingRequest):
    messages: list[ChatMessage] = Field(min_length=1)
    max_completion_tokens: int | None = Field(None, ge=1)  # OpenAI's newer name for max_tokens


class ClassifyRequest(Request):
    model: str | None = None
    input: str | list[str] = Field(min_length=1)

    @property
    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else self.input
