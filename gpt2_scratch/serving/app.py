"""An OpenAI-compatible HTTP server for a checkpoint, on FastAPI and uvicorn.

A causal LM serves POST /v1/completions and /v1/chat/completions (OpenAI's request and response shapes, streaming
as server-sent events); its requests are decoded together by the continuous-batching `Scheduler`. A classifier
serves POST /v1/classify. Both serve GET /v1/models and /health. A bad request gets OpenAI's error shape,
{"error": {"message", "type", "param", "code"}}, with a 4xx status; a client that goes away before its answer is
complete, streamed or not, has its sequences cancelled, which frees their rows of the batch at the next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from ..generation import TextPieces
from .scheduler import Scheduler, Sequence
from .schemas import ChatCompletionRequest, ClassifyRequest, CompletionRequest, SamplingRequest

COMPLETION_DEFAULT_MAX_TOKENS = 16  # OpenAI's default for /v1/completions; chat defaults to the rest of the context


class APIError(Exception):
    """A request the server refuses: its status and OpenAI's error fields."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code

    def response(self) -> JSONResponse:
        kind = "invalid_request_error" if self.status < 500 else "server_error"
        body = {"error": {"message": self.message, "type": kind, "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status)


@dataclass
class ServedModel:
    """A loaded checkpoint: a causal LM with its Scheduler, or a classifier (scheduler None)."""

    name: str
    model: torch.nn.Module
    tokenizer: object
    scheduler: Scheduler | None = None
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def is_classifier(self) -> bool:
        return self.scheduler is None


def load_served_model(checkpoint: str | os.PathLike, *, max_batch_size: int = 16, dtype: str | None = None,
                      name: str | None = None) -> ServedModel:
    """The checkpoint in `checkpoint` (a model folder or a run folder) ready to serve: a ScratchGPT2 causal LM in
    the decoding layout with a Scheduler of `max_batch_size` rows, or a classifier."""
    from transformers import AutoConfig

    from ..classification.inference import load_classifier
    from ..training.decoding_models import resolve_model_dir

    folder = resolve_model_dir(checkpoint)
    name = name or Path(checkpoint).resolve().name
    architectures = AutoConfig.from_pretrained(folder).architectures or []
    if any(architecture.endswith("ForSequenceClassification") for architecture in architectures):
        model, tokenizer = load_classifier(folder)
        return ServedModel(name, model.to(classifier_dtype(dtype)) if dtype else model, tokenizer)
    model, tokenizer = load_causal_lm(folder, dtype)
    return ServedModel(name, model, tokenizer, Scheduler(model, max_batch_size))


def classifier_dtype(name: str) -> torch.dtype:
    """A classifier is served with its weights cast to a float dtype; int8 decoding is for causal LMs only."""
    from ..conversion.api import parse_dtype

    dtype = parse_dtype(name)
    if not dtype.is_floating_point:
        raise ValueError(f"a classifier is served in float32, bfloat16 or float16, not {name!r}: drop --dtype or pick "
                         "one of those.")
    return dtype


def load_causal_lm(checkpoint: str | os.PathLike, dtype: str | None = None):
    """A gpt2-scratch causal LM (a model folder, or a run folder's latest checkpoint) ready to decode in `dtype`
    ("float32", the default, "bfloat16", "float16" or "int8": gpt2_scratch.precision), and its tokenizer."""
    from transformers import AutoConfig

    from ..training.decoding_models import load_for_decoding, resolve_model_dir

    folder = resolve_model_dir(checkpoint)
    if AutoConfig.from_pretrained(folder).model_type != "scratch-gpt2":
        raise ValueError(f"{folder} holds no gpt2-scratch model: convert it first with "
                         f"`gpt2-scratch convert {folder} OUT`.")
    return load_for_decoding(folder, dtype or "float32")



class ChoiceText:
    """The text of one choice as its tokens come: whole characters only, cut before the first stop string, and
    held back while its end could still be the beginning of one."""

    def __init__(self, tokenizer, stop: list[str]):
        self.pieces, self.stop = TextPieces(tokenizer), stop
        self.text, self.sent, self.tokens = "", 0, 0

    def add(self, token: int) -> tuple[str, bool]:
        """The text now safe to send, and whether a stop string ended the choice."""
        self.tokens += 1
        self.text += self.pieces.add(token)
        return self.release(final=False)

    def finish(self) -> str:
        self.text += self.pieces.rest()
        return self.release(final=True)[0]

    def release(self, final: bool) -> tuple[str, bool]:
        starts = [start for start in (self.text.find(stop, self.sent) for stop in self.stop) if start >= 0]
        if starts:
            end, stopped = min(starts), True
        else:
            held = 0 if final else max((k for stop in self.stop for k in range(1, len(stop))
                                        if self.text.endswith(stop[:k])), default=0)
            end, stopped = max(self.sent, len(self.text) - held), False
        piece, self.sent = self.text[self.sent:end], end
        return piece, stopped


@dataclass
class Choice:
    index: int
    text: ChoiceText
    sequence: Sequence
    prompt_tokens: int
    finish_reason: str | None = None


class Generation:
    """The choices of one request, decoded by the scheduler; `stream()` yields (choice, new text) as they come."""

    def __init__(self, served: ServedModel, prompts: list[list[int]], request: SamplingRequest, max_tokens: int | None):
        self.events: asyncio.Queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        temperature = 1.0 if request.temperature is None else request.temperature
        self.choices = []
        for index, prompt in enumerate(p for p in prompts for _ in range(request.n)):
            room = served.model.config.n_positions - len(prompt)
            generator = torch.Generator()
            if request.seed is None:
                generator.seed()  # a fresh random seed
            else:
                generator.manual_seed(request.seed + index)  # choice i of a seeded request: seed + i
            sequence = Sequence(
                prompt, max_tokens or max(1, room), self.deliverer(loop, index),
                temperature=temperature, top_k=request.top_k or None, top_p=request.top_p, generator=generator,
                eos_token_id=served.tokenizer.eos_token_id,
            )
            try:
                served.scheduler.check(sequence)
            except ValueError as error:
                raise APIError(400, str(error), "max_tokens", "context_length_exceeded") from None
            text = ChoiceText(served.tokenizer, request.stop_strings)
            self.choices.append(Choice(index, text, sequence, len(prompt)))
        self.scheduler, self.n = served.scheduler, request.n

    def deliverer(self, loop: asyncio.AbstractEventLoop, index: int):
        def deliver(token: int | None, finish_reason: str | None) -> None:  # called by the scheduler's thread
            with contextlib.suppress(RuntimeError):  # the event loop has closed: nobody is listening any more
                loop.call_soon_threadsafe(self.events.put_nowait, (index, token, finish_reason))

        return deliver

    async def stream(self) -> AsyncIterator[tuple[Choice, str]]:
        """(choice, text) as the text comes; a choice's last event has its finish_reason set. Leaving early (a
        client gone) cancels the sequences still running."""
        for choice in self.choices:
            self.scheduler.submit(choice.sequence)
        try:
            unfinished = len(self.choices)
            while unfinished:
                index, token, finish_reason = await self.events.get()
                choice = self.choices[index]
                if choice.finish_reason is not None:
                    continue  # tokens that came after a stop string
                if token is not None:
                    text, stopped = choice.text.add(token)
                    if stopped:
                        choice.sequence.cancelled = True
                        choice.finish_reason = "stop"
                else:
                    text = choice.text.finish()
                    choice.finish_reason = finish_reason
                if choice.finish_reason is not None:
                    unfinished -= 1
                if text or choice.finish_reason is not None:
                    yield choice, text
        finally:
            for choice in self.choices:
                choice.sequence.cancelled = True

    def usage(self) -> dict:
        prompt_tokens = sum(choice.prompt_tokens for choice in self.choices[:: self.n])  # each prompt once
        completion_tokens = sum(choice.text.tokens for choice in self.choices)
        return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens}


def check_finished(choice: Choice) -> None:
    if choice.finish_reason and choice.finish_reason.startswith("error"):
        raise APIError(500, f"generation failed: {choice.finish_reason[len('error: '):]}", code="generation_failed")


def build_app(served: ServedModel) -> FastAPI:
    """The ASGI app serving `served`; its scheduler thread runs while the app does (lifespan)."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        if served.scheduler is not None:
            served.scheduler.start()
        yield
        if served.scheduler is not None:
            served.scheduler.stop()

    app = FastAPI(title="gpt2-scratch", lifespan=lifespan)
    app.state.served = served

    @app.exception_handler(APIError)
    async def api_error(request: Request, error: APIError):
        return error.response()

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError):
        problem = error.errors()[0]
        if problem["type"] == "json_invalid":
            return APIError(400, f"the request body is not valid JSON: {problem.get('ctx', {}).get('error', '')}",
                            code="invalid_json").response()
        place = ".".join(str(part) for part in problem["loc"] if part != "body")
        message = problem["msg"].removeprefix("Value error, ")
        return APIError(400, f"{place}: {message}" if place else message, place or None).response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException):
        return APIError(error.status_code, str(error.detail)).response()

    @app.exception_handler(Exception)
    async def server_error(request: Request, error: Exception):
        return APIError(500, f"{type(error).__name__}: {error}").response()

    @app.get("/health")
    async def health():
        load = served.scheduler.load if served.scheduler is not None else {}
        return {"status": "ok", "model": served.name, **load}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [
            {"id": served.name, "object": "model", "created": served.created, "owned_by": "gpt2-scratch"}
        ]}

    def check_model(name: str | None, classifier: bool) -> None:
        if name is not None and name != served.name:
            raise APIError(404, f"The model {name!r} does not exist here; this server serves {served.name!r}.",
                           "model", "model_not_found")
        if classifier != served.is_classifier:
            what = "a classifier: POST /v1/classify" if served.is_classifier else "a causal LM: use the completions"
            raise APIError(400, f"{served.name!r} is {what}.", "model", "wrong_model_kind")

    @app.post("/v1/completions")
    async def completions(request: CompletionRequest, http_request: Request):
        check_model(request.model, classifier=False)
        prompts = prompt_token_ids(request.prompt, served.tokenizer)
        generation = Generation(served, prompts, request, request.max_tokens or COMPLETION_DEFAULT_MAX_TOKENS)
        return await respond(generation, request, http_request, "text_completion", "cmpl")

    @app.post("/v1/chat/completions")
    async def chat_completions(request: ChatCompletionRequest, http_request: Request):
        check_model(request.model, classifier=False)
        prompt = chat_prompt(request, served.tokenizer)
        generation = Generation(served, [prompt], request, request.max_completion_tokens or request.max_tokens)
        return await respond(generation, request, http_request, "chat.completion", "chatcmpl")

    @app.post("/v1/classify")
    async def classify(request: ClassifyRequest):
        from ..classification.inference import classify as classify_texts

        check_model(request.model, classifier=True)
        try:
            results = await run_in_threadpool(classify_texts, request.texts, served.model, served.tokenizer)
        except ValueError as error:
            raise APIError(400, str(error), "input") from None
        return {"object": "list", "model": served.name,
                "data": [{"index": i, **result} for i, result in enumerate(results)]}

    async def respond(generation: Generation, request: SamplingRequest, http_request: Request, kind: str, prefix: str):
        header = {"id": f"{prefix}-{uuid.uuid4().hex}", "object": kind, "created": int(time.time()),
                  "model": served.name}
        chat = kind == "chat.completion"
        if request.stream:
            usage = bool(request.stream_options and request.stream_options.include_usage)
            return StreamingResponse(sse(generation, {**header, "object": f"{kind}.chunk" if chat else kind}, chat,
                                         usage), media_type="text/event-stream")
        collecting = asyncio.ensure_future(whole_texts(generation))
        watching = asyncio.ensure_future(until_disconnected(http_request))
        await asyncio.wait({collecting, watching}, return_when=asyncio.FIRST_COMPLETED)
        watching.cancel()
        if not collecting.done():  # the client has gone: its sequences leave the batch at the next step
            collecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await collecting
            return Response(status_code=499)  # nobody reads it; nginx's code for "client closed request"
        texts = collecting.result()
        choices = []
        for choice in generation.choices:
            check_finished(choice)
            body = {"message": {"role": "assistant", "content": texts[choice.index]}} if chat else {
                "text": texts[choice.index]}
            choices.append({"index": choice.index, **body, "finish_reason": choice.finish_reason, "logprobs": None})
        return {**header, "choices": choices, "usage": generation.usage()}

    return app


async def whole_texts(generation: Generation) -> dict[int, str]:
    """Each choice's whole text, once every choice has finished."""
    texts = {choice.index: "" for choice in generation.choices}
    async with contextlib.aclosing(generation.stream()) as events:
        async for choice, text in events:
            texts[choice.index] += text
    return texts


async def until_disconnected(http_request: Request, every: float = 0.1) -> None:
    """Return once the client of a request that is not streamed has closed its connection (a streamed one learns
    it from its next write)."""
    while not await http_request.is_disconnected():
        await asyncio.sleep(every)


async def sse(generation: Generation, header: dict, chat: bool, include_usage: bool) -> AsyncIterator[str]:
    """The server-sent events of a streamed response: one chunk per piece of text, a last one per choice with
    its finish_reason, the usage when asked, then [DONE]."""

    def event(payload: dict) -> str:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    def chunk(index: int, text: str | None, finish_reason: str | None, role: bool = False) -> dict:
        if chat:
            delta = {"role": "assistant", "content": ""} if role else ({} if text is None else {"content": text})
            body = {"delta": delta}
        else:
            body = {"text": text or ""}
        return {**header, "choices": [{"index": index, **body, "finish_reason": finish_reason, "logprobs": None}]}

    if chat:
        for choice in generation.choices:
            yield event(chunk(choice.index, None, None, role=True))
    async with contextlib.aclosing(generation.stream()) as events:  # closed at once when the client goes away
        async for choice, text in events:
            if text:
                yield event(chunk(choice.index, text, None))
            if choice.finish_reason is not None:
                if choice.finish_reason.startswith("error"):
                    yield event({"error": {"message": choice.finish_reason, "type": "server_error"}})
                    continue
                yield event(chunk(choice.index, None, choice.finish_reason))
    if include_usage:
        yield event({**header, "choices": [], "usage": generation.usage()})
    yield "data: [DONE]\n\n"


def prompt_token_ids(prompt, tokenizer) -> list[list[int]]:
    """A completion request's prompt(s) as token ids: a string, strings, token ids, or lists of token ids."""
    if isinstance(prompt, str):
        prompt = [prompt]
    if prompt and all(isinstance(item, int) for item in prompt):
        prompt = [prompt]
    prompts = [tokenizer.encode(item) if isinstance(item, str) else list(item) for item in prompt]
    vocabulary = len(tokenizer)
    for ids in prompts:
        if not ids:
            raise APIError(400, "a prompt is empty: give at least one token to continue from.", "prompt")
        if not all(0 <= token < vocabulary for token in ids):
            raise APIError(400, f"prompt token ids must lie in [0, {vocabulary}).", "prompt")
    return prompts


def chat_prompt(request: ChatCompletionRequest, tokenizer) -> list[int]:
    """The messages written in the checkpoint's chat template (the prompt format it was instruction-tuned with)."""
    if not tokenizer.chat_template:
        raise APIError(400, "this checkpoint has no chat template (it was not instruction-tuned by `gpt2-scratch "
                       "instruct`): use /v1/completions with a prompt.", "messages", "no_chat_template")
    from jinja2 import TemplateError

    messages = [message.for_template() for message in request.messages]
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except TemplateError as error:
        raise APIError(400, str(error), "messages") from None
    return tokenizer.encode(text)


def serve(checkpoint: str | os.PathLike, host: str = "127.0.0.1", port: int = 8000, max_batch_size: int = 16,
          dtype: str | None = None, name: str | None = None) -> None:
    """Serve `checkpoint` over HTTP until interrupted (Ctrl-C)."""
    import uvicorn

    served = load_served_model(checkpoint, max_batch_size=max_batch_size, dtype=dtype, name=name)
    uvicorn.run(build_app(served), host=host, port=port)
