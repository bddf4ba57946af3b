"""`gpt2-scratch serve` end to end: a real uvicorn server on 127.0.0.1, queried with the official `openai` client,
its answers checked against transformers' own GPT-2 with the same weights (greedy and seeded sampling), and the
continuous-batching scheduler against solo runs, at the tiny width and at the `small` preset's."""

import io
import json
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import torch
import uvicorn
from transformers import pipeline

from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM, ScratchGPT2ForSequenceClassification, kernels
from gpt2_scratch.cli import main
from gpt2_scratch.conversion import to_transformers_gpt2
from gpt2_scratch.generation import generate_tokens
from gpt2_scratch.instruct import ALPACA
from gpt2_scratch.precision import decoding_model
from gpt2_scratch.serving import Scheduler, Sequence, build_app, load_served_model
from gpt2_scratch.serving import scheduler as scheduler_module
from gpt2_scratch.serving.scheduler import PADDING_ALLOWED, PREFILL_TOKENS, BatchDecoder

PROMPTS = [
    "Every effort moves you",
    "I had always thought Jack Gisburn rather a cheap genius",
    "The",
    "It was no great surprise to me to hear that, in the height of his glory, he had dropped his painting",
    "Hello, world!",
    "Once upon a time there was",
    "Mrs. Gisburn",
    "1 2 3 4 5 6",
    "\u00e9t\u00e9 \u2014 caf\u00e9",
    "The quick brown fox jumps over",
    "Below is an instruction",
    "He laughed",
    "A",
    "In the beginning",
    "Q: What is the capital of France?\nA:",
    "def main():\n    return",
]


class RunningServer:
    """An app served by uvicorn in a thread, on a free port of 127.0.0.1."""

    def __init__(self, served):
        self.served = served
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(build_app(served), host="127.0.0.1", port=self.port,
                                                    log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        self.url = f"http://127.0.0.1:{self.port}"
        self.client = openai.OpenAI(base_url=f"{self.url}/v1", api_key="unused", max_retries=0, timeout=60)

    def post_raw(self, path: str, body: bytes) -> tuple[int, dict]:
        request = urllib.request.Request(self.url + path, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read())

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path) as response:
            return json.loads(response.read())

    def close(self):
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, tokenizer):
    """A tiny causal LM with a long context (so that a stream can outlast a disconnect) and the Alpaca chat template."""
    torch.manual_seed(0)
    model = ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("tiny", n_positions=1024)).eval()
    folder = tmp_path_factory.mktemp("served") / "tiny-chat"
    tokenizer.chat_template = ALPACA.chat_template()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def server(checkpoint):
    running = RunningServer(load_served_model(checkpoint, max_batch_size=16))
    yield running
    running.close()


@pytest.fixture(scope="module")
def reference(checkpoint):
    """transformers' GPT2LMHeadModel with the served weights: the oracle."""
    return to_transformers_gpt2(ScratchGPT2ForCausalLM.from_pretrained(checkpoint)).eval()


def reference_continuation(reference, tokenizer, prompt: str, max_new_tokens: int, **sampling) -> str:
    input_ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        output = reference.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=max_new_tokens,
                                    min_new_tokens=max_new_tokens, pad_token_id=tokenizer.eos_token_id,
                                    do_sample=bool(sampling), **sampling)
    return tokenizer.decode(output[0, input_ids.shape[1]:], clean_up_tokenization_spaces=False)


def test_greedy_completions_equal_transformers_and_report_usage(server, reference, tokenizer):
    expected = [reference_continuation(reference, tokenizer, prompt, 12) for prompt in PROMPTS[:2]]
    response = server.client.completions.create(model="tiny-chat", prompt=PROMPTS[:2], max_tokens=12, temperature=0,
                                                n=2)
    assert [choice.index for choice in response.choices] == [0, 1, 2, 3]
    assert [choice.text for choice in response.choices] == [expected[0], expected[0], expected[1], expected[1]]
    assert {choice.finish_reason for choice in response.choices} == {"length"}
    prompt_tokens = sum(len(tokenizer.encode(prompt)) for prompt in PROMPTS[:2])
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (prompt_tokens, 4 * 12)
    assert response.object == "text_completion" and response.model == "tiny-chat"

    ids = tokenizer.encode(PROMPTS[0])  # a prompt given as token ids
    by_ids = server.client.completions.create(model="tiny-chat", prompt=ids, max_tokens=12, temperature=0)
    assert by_ids.choices[0].text == expected[0]


def test_streamed_completion_pieces_join_to_the_whole_answer(server, reference, tokenizer):
    expected = reference_continuation(reference, tokenizer, PROMPTS[8], 20)
    chunks = list(server.client.completions.create(model="tiny-chat", prompt=PROMPTS[8], max_tokens=20, temperature=0,
                                                   stream=True, stream_options={"include_usage": True}))
    texts = [chunk.choices[0].text for chunk in chunks if chunk.choices]
    assert "".join(texts) == expected and len([text for text in texts if text]) > 3  # streamed, not sent at once
    assert [chunk.choices[0].finish_reason for chunk in chunks if chunk.choices][-1] == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 20


def test_seeded_sampling_equals_transformers_with_the_same_seed(server, reference, tokenizer):
    torch.manual_seed(1234)
    expected = reference_continuation(reference, tokenizer, PROMPTS[5], 16, temperature=0.8, top_k=40, top_p=0.9)
    answers = [
        server.client.completions.create(model="tiny-chat", prompt=PROMPTS[5], max_tokens=16, temperature=0.8,
                                         top_p=0.9, seed=1234, extra_body={"top_k": 40}).choices[0].text
        for _ in range(2)
    ]
    assert answers == [expected, expected]
    other = server.client.completions.create(model="tiny-chat", prompt=PROMPTS[5], max_tokens=16, temperature=0.8,
                                             top_p=0.9, seed=99, extra_body={"top_k": 40})
    assert other.choices[0].text != expected


def test_stop_strings_end_the_text_before_them(server, reference, tokenizer):
    full = reference_continuation(reference, tokenizer, PROMPTS[0], 12)
    stop = full[len(full) // 2: len(full) // 2 + 3]
    expected = full[: full.find(stop)]
    answer = server.client.completions.create(model="tiny-chat", prompt=PROMPTS[0], max_tokens=12, temperature=0,
                                              stop=[stop, "never-there"])
    assert (answer.choices[0].text, answer.choices[0].finish_reason) == (expected, "stop")
    streamed = server.client.completions.create(model="tiny-chat", prompt=PROMPTS[0], max_tokens=12, temperature=0,
                                                stop=stop, stream=True)
    assert "".join(chunk.choices[0].text for chunk in streamed) == expected


def test_chat_builds_the_training_prompt(server, reference, tokenizer):
    record = {"instruction": "Rewrite the sentence in passive voice.", "input": "The cat chased the mouse."}
    expected = reference_continuation(reference, tokenizer, ALPACA.query(record), 10)
    messages = [{"role": "user", "content": record["instruction"], "input": record["input"]}]
    answer = server.client.chat.completions.create(model="tiny-chat", messages=messages, max_tokens=10, temperature=0)
    assert answer.choices[0].message.content == expected
    assert (answer.choices[0].message.role, answer.choices[0].finish_reason) == ("assistant", "length")
    assert answer.usage.prompt_tokens == len(tokenizer.encode(ALPACA.query(record)))

    chunks = list(server.client.chat.completions.create(model="tiny-chat", messages=messages, max_tokens=10,
                                                        temperature=0, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[0].object == "chat.completion.chunk"
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    "request_fields, status, param",
    [
        (dict(model="gpt-4"), 404, "model"),
        (dict(max_tokens=1021), 400, "max_tokens"),  # 4 prompt tokens + 1021 > 1024
        (dict(temperature=-0.5), 400, "temperature"),
        (dict(temperature=2.5), 400, "temperature"),
        (dict(top_p=0), 400, "top_p"),
        (dict(top_p=1.5), 400, "top_p"),
        (dict(n=0), 400, "n"),
        (dict(stop=["a", "b", "c", "d", "e"]), 400, None),
        (dict(logprobs=2), 400, None),
        (dict(prompt=[1, 2, 99999]), 400, "prompt"),
        (dict(prompt=""), 400, "prompt"),
    ],
)
def test_bad_completion_requests_get_openai_errors(server, request_fields, status, param):
    fields = {"model": "tiny-chat", "prompt": "Every effort moves you", "max_tokens": 4, **request_fields}
    with pytest.raises(openai.APIStatusError) as caught:
        server.client.completions.create(**fields)
    assert caught.value.status_code == status
    error = caught.value.body
    assert error["type"] == "invalid_request_error" and error["message"] and error["param"] == param


def test_malformed_requests_and_wrong_endpoints_get_json_errors(server):
    status, body = server.post_raw("/v1/completions", b'{"model": "tiny-chat", "prompt": ')
    assert status == 400 and "not valid JSON" in body["error"]["message"]
    status, body = server.post_raw("/v1/chat/completions", json.dumps(
        {"model": "tiny-chat", "messages": [{"role": "system", "content": "Be brief."}]}).encode())
    assert status == 400 and "system" in body["error"]["message"]
    status, body = server.post_raw("/v1/classify", json.dumps({"input": ["hi"]}).encode())
    assert status == 400 and "causal LM" in body["error"]["message"]
    status, body = server.post_raw("/v1/nothing", b"{}")
    assert status == 404 and body["error"]["message"]
    assert server.get("/health")["status"] == "ok"  # the server lives on


def test_a_failing_step_fails_its_requests_and_the_server_goes_on(server, monkeypatch):
    decoder = server.served.scheduler.decoder
    step = decoder.step
    calls = []

    def failing_once(tokens, positions):
        calls.append(len(tokens))
        if len(calls) == 1:
            raise RuntimeError("simulated failure")
        return step(tokens, positions)

    monkeypatch.setattr(decoder, "step", failing_once)
    with pytest.raises(openai.InternalServerError, match="simulated failure"):
        server.client.completions.create(model="tiny-chat", prompt="Every effort", max_tokens=4, temperature=0)
    again = server.client.completions.create(model="tiny-chat", prompt="Every effort", max_tokens=4, temperature=0)
    assert again.choices[0].finish_reason == "length" and server.served.scheduler.finished["error"] == 1


def test_models_and_health(server):
    assert [model.id for model in server.client.models.list()] == ["tiny-chat"]
    assert server.get("/health") == {"status": "ok", "model": "tiny-chat", "running": 0, "waiting": 0}


def assert_cancelled_before_its_end(server, finished_before: dict) -> None:
    """The one request sent since `finished_before` (the scheduler's finish counts) is cancelled, not run to its
    end, and its row is free."""
    scheduler = server.served.scheduler
    deadline = time.monotonic() + 20
    while scheduler.finished["cancelled"] == finished_before.get("cancelled", 0):
        assert time.monotonic() < deadline, "the abandoned request kept its row"
        time.sleep(0.01)
    assert scheduler.finished["length"] == finished_before.get("length", 0)
    assert server.get("/health")["running"] == 0


def test_a_client_gone_before_its_whole_answer_frees_its_row(server):
    """A request that is not streamed: the client closes its connection while the answer is being decoded."""
    scheduler = server.served.scheduler
    before = dict(scheduler.finished)
    body = json.dumps({"model": "tiny-chat", "prompt": "Every effort", "max_tokens": 1000, "temperature": 0})
    with socket.create_connection(("127.0.0.1", server.port)) as connection:
        connection.sendall(f"POST /v1/completions HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                           f"Content-Length: {len(body)}\r\n\r\n{body}".encode())
        deadline = time.monotonic() + 20
        while server.get("/health")["running"] == 0:
            assert time.monotonic() < deadline, "the request never started decoding"
            time.sleep(0.01)
    assert_cancelled_before_its_end(server, before)


def test_a_client_gone_mid_stream_frees_its_row(server):
    scheduler = server.served.scheduler
    before = dict(scheduler.finished)
    stream = server.client.completions.create(model="tiny-chat", prompt="Every effort", max_tokens=1000,
                                              temperature=0, stream=True)
    pieces = iter(stream)
    next(pieces), next(pieces)
    stream.close()
    assert_cancelled_before_its_end(server, before)


def test_sixteen_concurrent_streaming_clients_get_their_solo_answers(server, reference, tokenizer):
    expected = [reference_continuation(reference, tokenizer, prompt, 24) for prompt in PROMPTS]
    steps_before = server.served.scheduler.steps
    start = threading.Barrier(len(PROMPTS))

    def client(prompt: str) -> str:
        start.wait()
        chunks = server.client.completions.create(model="tiny-chat", prompt=prompt, max_tokens=24, temperature=0,
                                                  stream=True)
        return "".join(chunk.choices[0].text for chunk in chunks)

    with ThreadPoolExecutor(len(PROMPTS)) as pool:
        answers = list(pool.map(client, PROMPTS))
    assert answers == expected
    # decoded together: far fewer steps than the 16 x 23 that one request at a time would take
    assert server.served.scheduler.steps - steps_before < 4 * 23


def run_staggered(model, prompts: list[list[int]], new_tokens: int, together: bool = False) -> list[list[int]]:
    """Greedy tokens of each prompt from a Scheduler, each prompt joining a batch already running, or (`together`)
    all of them waiting before the scheduler starts, so that they are prefilled together."""
    scheduler = Scheduler(model, max_batch_size=len(prompts))
    received = [[] for _ in prompts]
    done = threading.Semaphore(0)

    def deliverer(i):
        return lambda token, reason: received[i].append(token) if token is not None else done.release()

    if not together:
        scheduler.start()
    try:
        for i, ids in enumerate(prompts):
            scheduler.submit(Sequence(ids, new_tokens, deliverer(i)))
            time.sleep(0 if together else 0.05)
        if together:
            scheduler.start()
        for _ in prompts:
            assert done.acquire(timeout=120)
    finally:
        scheduler.stop()
    return received


@pytest.fixture(scope="module")
def small_width():
    """Random weights at the `small` preset's width (768), with a short context, and transformers' GPT-2 with them."""
    torch.manual_seed(0)
    model = ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("small", n_positions=128)).eval()
    return model, to_transformers_gpt2(model).eval()


def solo_greedy_tokens(reference, prompts: list[list[int]], new_tokens: int) -> list[list[int]]:
    expected = []
    for ids in prompts:
        input_ids = torch.tensor([ids])
        with torch.no_grad():
            output = reference.generate(input_ids, attention_mask=torch.ones_like(input_ids), max_new_tokens=new_tokens,
                                        min_new_tokens=new_tokens, do_sample=False, pad_token_id=0)
        expected.append(output[0, len(ids):].tolist())
    return expected


@pytest.mark.slow
def test_batched_decoding_equals_solo_decoding_at_the_small_width(tokenizer, small_width):
    """Rows of different lengths joining a running batch at the `small` preset's width give, token for token,
    what transformers' GPT-2 gives each prompt alone."""
    model, reference = small_width
    prompts = [tokenizer.encode(prompt) for prompt in PROMPTS[:4]]
    assert run_staggered(model, prompts, 6) == solo_greedy_tokens(reference, prompts, 6)


@pytest.fixture
def prefilled_groups(monkeypatch) -> list[list[list[int]]]:
    """The prompts of every BatchDecoder.prefill call from now on, one list a call."""
    groups = []
    prefill = BatchDecoder.prefill
    monkeypatch.setattr(BatchDecoder, "prefill", lambda self, row, group: groups.append(group) or prefill(self, row, group))
    return groups


@pytest.mark.slow
@pytest.mark.parametrize("budget", [PREFILL_TOKENS, 12])
def test_prompts_that_arrive_together_are_prefilled_together(tokenizer, small_width, budget, prefilled_groups,
                                                             monkeypatch):
    """Sixteen prompts of 1 to 23 tokens waiting together share prefill forwards (right-padded, shortest first,
    within the budget of padded positions and PADDING_ALLOWED), and each still gets what transformers' GPT-2
    gives it alone."""
    model, reference = small_width
    prompts = [tokenizer.encode(prompt) for prompt in PROMPTS]
    monkeypatch.setattr(scheduler_module, "PREFILL_TOKENS", budget)
    assert run_staggered(model, prompts, 4, together=True) == solo_greedy_tokens(reference, prompts, 4)
    assert sorted(map(len, sum(prefilled_groups, []))) == sorted(map(len, prompts))
    assert len(prefilled_groups) < len(prompts)  # batched: a forward for every prompt would make 16
    for group in prefilled_groups:
        padded = len(group) * max(map(len, group))
        assert len(group) == 1 or (padded <= budget and padded <= (1 + PADDING_ALLOWED) * sum(map(len, group)))


@pytest.mark.parametrize("our_kernel", [True, False], ids=["our-int8-kernel", "torch-int8-kernel"])
def test_int8_weights_batch_as_they_decode_alone(tokenizer, prefilled_groups, monkeypatch, our_kernel):
    """`serve --dtype int8`: the int8 decoding copy, batched, gives each prompt the tokens the same copy gives it
    alone in the lean decoding loop, on our int8 kernel and on torch's (where ours cannot be built)."""
    if not our_kernel:
        monkeypatch.setenv(kernels.SWITCH, "0")
    kernels.compiled.cache_clear()
    try:
        torch.manual_seed(0)
        model = decoding_model(ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("tiny")).eval(), "int8")
    finally:
        kernels.compiled.cache_clear()
    assert (model.lm_head.kernel is not None) == (our_kernel and kernels.available("int8_linear"))
    # four different prompts of four tokens: together, they could make one prefill forward without padding
    prompts = [tokenizer.encode(prompt)[:4] for prompt in (PROMPTS[1], PROMPTS[3], PROMPTS[5], PROMPTS[7])]
    alone = [[int(t) for t in generate_tokens(model, torch.tensor([ids]), 8)] for ids in prompts]
    assert run_staggered(model, prompts, 8) == alone
    # either kernel's cost grows with the rows, so prompts that arrive together are still prefilled one by one
    prefilled_groups.clear()
    assert run_staggered(model, prompts, 8, together=True) == alone
    assert list(map(len, prefilled_groups)) == [1, 1, 1, 1]


@pytest.fixture(scope="module")
def classifier_server(tmp_path_factory, tokenizer):
    torch.manual_seed(0)
    config = ScratchGPT2Config.from_preset("tiny", num_labels=2, id2label={0: "ham", 1: "spam"},
                                           label2id={"ham": 0, "spam": 1}, pad_token_id=tokenizer.eos_token_id)
    folder = tmp_path_factory.mktemp("served") / "spam"
    ScratchGPT2ForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    running = RunningServer(load_served_model(folder))
    yield running, folder
    running.close()


def test_classify_endpoint_equals_the_text_classification_pipeline(classifier_server, tokenizer):
    server, folder = classifier_server
    texts = ["WINNER!! Claim your free prize now", "See you at lunch?", "ok"]
    status, body = server.post_raw("/v1/classify", json.dumps({"model": "spam", "input": texts}).encode())
    assert status == 200
    expected = pipeline("text-classification", model=str(folder), tokenizer=tokenizer)(texts)
    assert [(row["index"], row["label"]) for row in body["data"]] == [(i, e["label"]) for i, e in enumerate(expected)]
    assert [row["score"] for row in body["data"]] == pytest.approx([e["score"] for e in expected], abs=1e-5)

    status, body = server.post_raw("/v1/classify", json.dumps({"input": ["fine", "   "]}).encode())
    assert status == 400 and body["error"]["param"] == "input"
    with pytest.raises(openai.BadRequestError):
        server.client.completions.create(model="spam", prompt="hello", max_tokens=2)


def test_chat_command_streams_answers_in_the_chat_template(checkpoint, reference, tokenizer, monkeypatch, capsys):
    questions = ["Name a primary color.", "And another one?"]
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(question + "\n" for question in questions)))
    assert main(["chat", str(checkpoint), "--max-new-tokens", "8", "--no-progress"]) == 0
    first_prompt = ALPACA.query({"instruction": questions[0], "input": ""})
    first = reference_continuation(reference, tokenizer, first_prompt, 8)
    second_query = ALPACA.query({"instruction": questions[1], "input": ""})
    second_prompt = first_prompt + first + tokenizer.eos_token + second_query
    second = reference_continuation(reference, tokenizer, second_prompt, 8)
    assert capsys.readouterr().out == f"> {first}\n> {second}\n> \n"


def test_chat_command_refuses_a_checkpoint_without_a_chat_template(tmp_path, tokenizer, capsys):
    ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("tiny")).save_pretrained(tmp_path)
    tokenizer.chat_template = None
    tokenizer.save_pretrained(tmp_path)
    capsys.readouterr()
    assert main(["chat", str(tmp_path), "--no-progress"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "no chat template" in error


def test_serve_command_refuses_bad_arguments_in_one_line(checkpoint, tmp_path, capsys):
    assert main(["serve", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert main(["serve", str(checkpoint), "--dtype", "float8", "--no-progress"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert len(errors) == 2 and "neither a model folder" in errors[0] and "unknown precision 'float8'" in errors[1]


@pytest.mark.slow
def test_serve_command_serves_until_terminated(checkpoint):
    import os
    import signal
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "gpt2_scratch.cli", "serve", str(checkpoint), "--port", str(port),
                                "--max-batch-size", "2", "--no-progress"], env={**os.environ, "HF_HUB_OFFLINE": "1"},
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        deadline = time.monotonic() + 60
        while True:
            try:
                models = client.models.list()
                break
            except openai.APIConnectionError:
                assert time.monotonic() < deadline and process.poll() is None, "the server did not start"
                time.sleep(0.2)
        assert [model.id for model in models] == ["tiny-chat"]
        answer = client.chat.completions.create(model="tiny-chat", messages=[{"role": "user", "content": "Hi"}],
                                                max_tokens=3, temperature=0)
        assert answer.choices[0].finish_reason == "length"
    finally:
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=30)
    # uvicorn shuts down in order, then hands the signal on: the CLI's exit status for SIGTERM, as every command's
    assert process.returncode == 128 + signal.SIGTERM and "Application shutdown complete" in output, output
