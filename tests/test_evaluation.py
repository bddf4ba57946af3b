"""Evaluation: the LLM judge against a loopback chat-completions server, score parsing, a local transformers
judge, and the MMLU scorer on files written here with a model whose answers are known."""

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from types import SimpleNamespace

import pytest
import torch
from torch import nn

from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM
from gpt2_scratch.evaluation import (
    ChatCompletionsJudge,
    TransformersJudge,
    judge_responses,
    load_mmlu,
    parse_score,
    score_mmlu,
)
from gpt2_scratch.evaluation.mmlu import letter_token_ids
from gpt2_scratch.instruct import ALPACA

MAX_REQUESTS = 20
SERVER_SECONDS = 30


class ChatCompletionsServer:
    """A chat-completions server on 127.0.0.1 that answers with scripted replies, records what it was sent, and
    stops after MAX_REQUESTS requests or SERVER_SECONDS seconds, whichever comes first."""

    def __init__(self, replies):
        self.replies = list(replies)
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "body": body, "authorization": self.headers["Authorization"]})
                reply = outer.replies[len(outer.requests) - 1]
                if reply is None:
                    self.send_error(500, "judge exploded")
                    return
                payload = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload.encode())

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.server.timeout = 0.2
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self):
        deadline = time.monotonic() + SERVER_SECONDS
        while not self.stopped.is_set() and len(self.requests) < MAX_REQUESTS and time.monotonic() < deadline:
            self.server.handle_request()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join(timeout=5)
        self.server.server_close()


RECORDS = [
    {"instruction": "Name the capital of France.", "input": "", "output": "Paris.", "model_response": "Paris"},
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "model_response": "6"},
    {"instruction": "Say hello.", "input": "", "output": "Hello!", "model_response": "Goodbye"},
]


def test_judge_over_chat_completions_scores_saves_and_reports_unparsable(tmp_path):
    with ChatCompletionsServer(["85", "Score: 40/100", "I cannot grade this response."]) as server:
        judge = ChatCompletionsJudge(base_url=server.url, model="llama3", timeout=10)
        result = judge_responses(RECORDS, judge, show_progress=False)
    assert result.scores == [85, 40, None]
    assert result.average == pytest.approx(62.5)
    assert result.num_unparsable == 1

    assert len(server.requests) == 3
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["body"]["model"] == "llama3"
    assert first["body"]["temperature"] == 0.0
    content = first["body"]["messages"][0]["content"]
    assert "Name the capital of France." in content and "Paris." in content and "Paris\n" in content
    assert "### Input:\n2 and 3" in server.requests[1]["body"]["messages"][0]["content"]

    result.save(tmp_path / "judge.json")
    saved = json.loads((tmp_path / "judge.json").read_text())
    assert saved["average"] == pytest.approx(62.5)
    assert saved["num_scored"] == 2 and saved["num_unparsable"] == 1
    assert [item["score"] for item in saved["items"]] == [85, 40, None]
    assert saved["items"][2]["judge_reply"] == "I cannot grade this response."
    assert saved["judge"]["model"] == "llama3"


def test_judge_works_offline_and_never_sends_the_hub_token(monkeypatch):
    """A local judge server is no Hub: HF_HUB_OFFLINE does not stop the judge, and the Hub token is not its key."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", "hf_not_for_the_judge")
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with ChatCompletionsServer(["70", "75"]) as server:
        assert ChatCompletionsJudge(base_url=server.url, model="m", timeout=10).complete("hi") == "70"
        ChatCompletionsJudge(base_url=server.url, model="m", api_key="sk-judge", timeout=10).complete("hi")
    assert [request["authorization"] for request in server.requests] == [None, "Bearer sk-judge"]


def test_judge_errors_name_the_endpoint():
    with ChatCompletionsServer([None]) as server:
        with pytest.raises(RuntimeError, match="HTTP 500"):
            ChatCompletionsJudge(base_url=server.url + "/v1", model="m", timeout=10).complete("hi")
        port = server.server.server_address[1]
    with pytest.raises(RuntimeError, match="could not reach"):
        ChatCompletionsJudge(base_url=f"http://127.0.0.1:{port}", model="m", timeout=2).complete("hi")
    with pytest.raises(ValueError, match="model_response"):
        judge_responses([{"instruction": "a", "input": "", "output": "b"}], judge=None)


@pytest.mark.parametrize(
    "reply, score",
    [
        ("85", 85),
        ("**90**.", 90),
        ("Score: 72\n\nThe response misses 2 of the 3 items.", 72),
        ("I would rate it 30 out of 100.", 30),
        ("On a scale from 0 to 100, this deserves 64.", 64),
        ("87.5", 87.5),
        ("0", 0),
        ("somewhere between 40 and 60", None),
        ("1000", None),
        ("", None),
        ("The answer is correct.", None),
    ],
)
def test_parse_score(reply, score):
    assert parse_score(reply) == score


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    return ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("tiny")).eval()


def test_transformers_judge_decodes_greedily(tiny_model, tokenizer):
    judge = TransformersJudge(model=tiny_model, tokenizer=tokenizer, max_new_tokens=5)
    prompt = "Rate this response from 0 to 100:"
    ids = tokenizer.encode(prompt)
    for _ in range(5):  # greedy decoding by hand, without a cache
        with torch.no_grad():
            ids.append(int(tiny_model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert judge.complete(prompt) == tokenizer.decode(ids[-5:])
    assert judge.describe()["decoding"] == "greedy"


class AnswerKeyModel(nn.Module):
    """A stand-in LM that answers each question with the choice containing the word 'right': it puts a high
    logit on that letter at the last attended position only, and zeros everywhere else (zeros read as 'A')."""

    def __init__(self, tokenizer):
        super().__init__()
        self.tokenizer = tokenizer
        self.letters = letter_token_ids(tokenizer)
        self.config = SimpleNamespace(n_positions=1024)
        self.device = torch.device("cpu")

    def forward(self, input_ids, attention_mask):
        logits = torch.zeros(*input_ids.shape, len(self.tokenizer))
        for row, (ids, mask) in enumerate(zip(input_ids, attention_mask)):
            length = int(mask.sum())
            lines = self.tokenizer.decode(ids[:length]).splitlines()
            choice = next(i for i, letter in enumerate("ABCD") if any(
                line.startswith(f"{letter}. ") and "right" in line for line in lines))
            logits[row, length - 1, self.letters[choice]] = 5.0
        return SimpleNamespace(logits=logits)


def question(subject, text, right, answer):
    choices = [f"option {i}" for i in range(4)]
    choices[right] = "the right one"
    return {"question": text, "subject": subject, "choices": choices, "answer": answer}


def test_mmlu_scorer_on_local_files_with_known_answers(tmp_path, tokenizer):
    folder = tmp_path / "mmlu"
    folder.mkdir()
    astronomy = [  # the model picks B, C, D; the key says B, C, A: 2 of 3
        question("astronomy", "Which planet is largest?", 1, 1),
        question("astronomy", "What is a light year, measured in the units that astronomers use most often?", 2, 2),
        question("astronomy", "Sun?", 3, 0),
    ]
    law = [  # the model picks D, C; the key says D, D ("D" as a letter): 1 of 2
        question("high_school_law", "What is a tort?", 3, "D"),
        question("high_school_law", "Who writes statutes in a parliamentary democracy with two chambers?", 2, "D"),
    ]
    (folder / "astronomy.json").write_text(json.dumps(astronomy))
    (folder / "law.jsonl").write_text("".join(json.dumps(q) + "\n" for q in law))

    examples = load_mmlu(folder)
    assert len(examples) == 5 and examples[3]["answer"] == 3
    result = score_mmlu(AnswerKeyModel(tokenizer), tokenizer, examples, batch_size=2, show_progress=False)
    assert result.predictions == [1, 2, 3, 3, 2]
    assert result.per_subject["astronomy"] == {"correct": 2, "total": 3, "accuracy": pytest.approx(2 / 3)}
    assert result.per_subject["high_school_law"] == {"correct": 1, "total": 2, "accuracy": 0.5}
    assert result.accuracy == pytest.approx(3 / 5)
    result.save(tmp_path / "mmlu.json")
    assert json.loads((tmp_path / "mmlu.json").read_text())["predictions"] == ["B", "C", "D", "D", "C"]

    only_law = load_mmlu(folder, subjects=["high_school_law"])
    assert [e["question"] for e in only_law] == [q["question"] for q in law]


def test_mmlu_predictions_do_not_depend_on_batching(tmp_path, tokenizer, tiny_model):
    examples = [question("x", "Q" + "?" * (3 * i), i % 4, 0) for i in range(5)]
    alone = score_mmlu(tiny_model, tokenizer, examples, batch_size=1, show_progress=False).predictions
    batched = score_mmlu(tiny_model, tokenizer, examples, batch_size=5, show_progress=False).predictions
    assert alone == batched


def test_mmlu_rejects_malformed_examples(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([question("x", "q", 0, 0), {"question": "q", "choices": ["a", "b"], "answer": 0}]))
    with pytest.raises(ValueError, match="example 1 has 2 choices"):
        load_mmlu(path)
    path.write_text(json.dumps([question("x", "q", 0, "E")]))
    with pytest.raises(ValueError, match="answer 'E'"):
        load_mmlu(path)


def test_evaluate_commands_judge_mmlu_and_loss(tmp_path, tokenizer, tiny_model, capsys):
    from gpt2_scratch.cli import main

    responses = tmp_path / "responses.json"
    responses.write_text(json.dumps(RECORDS))
    with ChatCompletionsServer(["Score: 90", "10", "n/a"]) as server:
        assert main(["evaluate", "judge", str(responses), "--url", server.url, "--model", "judge-x"]) == 0
    saved = json.loads((tmp_path / "judge-scores.json").read_text())
    assert saved["average"] == pytest.approx(50.0) and saved["num_unparsable"] == 1

    checkpoint = tmp_path / "model"
    tiny_model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    questions = tmp_path / "mmlu.json"
    questions.write_text(json.dumps([question("x", f"Question {i}?", i % 4, i % 4) for i in range(4)]))
    capsys.readouterr()
    assert main(["evaluate", "mmlu", "--model", str(checkpoint), "--data", str(questions),
                 "--output", str(tmp_path / "scores.json")]) == 0
    expected = score_mmlu(tiny_model, tokenizer, load_mmlu(questions), show_progress=False)
    assert json.loads((tmp_path / "scores.json").read_text())["accuracy"] == expected.accuracy
    assert main(["evaluate", "judge", str(tmp_path / "missing.json"), "--url", server.url]) == 2

    # loss over 3 records, batched and padded, equals the per-token mean of each record's loss computed alone
    records = tmp_path / "records.json"
    records.write_text(json.dumps([{k: r[k] for k in ("instruction", "input", "output")} for r in RECORDS]))
    capsys.readouterr()
    assert main(["evaluate", "loss", "--model", str(checkpoint), "--data", str(records), "--split-name", "all"]) == 0
    reported = json.loads(capsys.readouterr().out)
    total, count = 0.0, 0
    for record in RECORDS:
        ids = tokenizer.encode(ALPACA.query(record) + record["output"]) + [tokenizer.eos_token_id]
        with torch.no_grad():
            logits = tiny_model(torch.tensor([ids])).logits[0, :-1]
        total += torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum").item()
        count += len(ids) - 1
    assert reported["loss"] == pytest.approx(total / count, rel=1e-5)
    assert reported["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-5)


def test_evaluate_loss_refuses_a_context_longer_than_the_model_has(tmp_path, tokenizer, tiny_model, capsys):
    from gpt2_scratch.cli import main

    checkpoint = tmp_path / "model"
    tiny_model.save_pretrained(checkpoint)
    tokenizer.save_pretrained(checkpoint)
    text = tmp_path / "text.txt"
    text.write_text("Every effort moves you forward. " * 60)
    positions = tiny_model.config.n_positions
    command = ["evaluate", "loss", "--model", str(checkpoint), "--text", str(text)]
    capsys.readouterr()
    assert main([*command, "--context-length", str(positions + 1)]) == 2
    error = capsys.readouterr().err
    assert f"--context-length {positions + 1} is longer than the {positions} positions" in error
    assert f"pass --context-length {positions} or less" in error and len(error.strip().splitlines()) == 1
    assert main(command) == 0  # the default window fits the model
    assert json.loads(capsys.readouterr().out)["context_length"] == min(256, positions)
