"""Speed and memory of ScratchGPT2 against transformers' GPT2LMHeadModel with the same weights, in the same run.

    python benchmarks/run.py [--device cpu|cuda] [--sizes small,medium] [--quick] [--sections forward,train,...]

Every figure is measured for ours and for the reference, repetitions interleaved after warm-up, and reported as
the ratio ours / reference of the medians plus both absolute figures as median (min-max). Sections:

- forward:  tokens/s of a forward pass over a grid of batch x sequence length, float32 and bfloat16 autocast;
- train:    tokens/s of one training step (forward + backward + AdamW);
- generate: new tokens/s of greedy decoding (32-token prompt, 128 new tokens) at batch 1 and 8, and the time to
            the first token; ours through generate() (dynamic and static cache) and through the lean decoding loop
            of gpt2_scratch.generation over gpt2_scratch.precision.decoding_model in every precision (float32,
            bfloat16, float16, int8), each also against our float32; when llama-cpp-python is installed, llama.cpp
            on the same weights exported to GGUF F32, F16 and Q8_0, against our float32 and the matching precision;
- mfu:      achieved FLOP/s of the forward pass and training step against a measured matmul ceiling;
- memory:   peak anonymous memory (RssAnon, sampled) of loading a checkpoint, of one training step and of
            converting a checkpoint, each measured in a fresh process (benchmarks/memory_probe.py), with VmHWM
            beside it for contrast.

The table is printed (markdown) and everything is written as JSON to --output.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmarks import harness  # noqa: E402
from benchmarks.harness import Report, Row, machine_description, markdown_table, throughput, time_call  # noqa: E402
from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM  # noqa: E402
from gpt2_scratch.conversion import to_transformers_gpt2  # noqa: E402
from gpt2_scratch.generation import generate_tokens  # noqa: E402
from gpt2_scratch.precision import PRECISIONS, decoding_model  # noqa: E402
from gpt2_scratch.speed import pad_vocabulary  # noqa: E402
from gpt2_scratch.training.measurements import flops_per_token  # noqa: E402

SECTIONS = ("forward", "train", "generate", "mfu", "memory")


class Plan:
    """How much to measure: the full plan, or a quick one that finishes in a few minutes on a 2-core CPU."""

    def __init__(self, quick: bool, device: str):
        self.device = device
        self.warmup = 1
        self.repeats = 3 if quick else 5
        self.forward_shapes = [(4, 128)] if quick else [(1, 128), (4, 256), (8, 512), (1, 1024)]
        self.train_shape = (2, 128) if quick else (4, 256)
        self.prompt_length = 32
        self.new_tokens = 32 if quick else 128
        self.generate_batches = (1,) if quick else (1, 8)
        self.matmul_size = 1024 if quick else 2048
        if device.startswith("cuda"):
            self.forward_shapes = [(8, 1024), (32, 1024)]
            self.train_shape = (16, 1024)
            self.matmul_size = 8192


# ---------------------------------------------------------------------------------------------------------------------
# Models with the same weights
# ---------------------------------------------------------------------------------------------------------------------


def build_pair(size: str, device: str):
    """Ours with random weights, and transformers' GPT-2 holding a contiguous copy of the very same weights."""
    torch.manual_seed(0)
    ours = ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset(size)).eval()
    reference = to_transformers_gpt2(ours)
    with torch.no_grad():
        for parameter in reference.parameters():  # own storage, laid out as transformers would load it
            parameter.data = parameter.data.contiguous().clone()
    return ours.to(device), reference.to(device).eval()


def autocast(device: str, dtype_name: str):
    if dtype_name == "bf16-autocast":
        return torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16)
    return contextlib.nullcontext()


def random_tokens(batch: int, seq: int, device: str, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 50257, (batch, seq), generator=generator).to(device)


def interleaved(candidates: dict, plan: Plan) -> dict[str, list]:
    return harness.interleaved(candidates, warmup=plan.warmup, repeats=plan.repeats)


# ---------------------------------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------------------------------


def timed_candidates(models: dict, run, plan: Plan) -> dict[str, list[float]]:
    """Seconds per call of run(name, model) for each model (our variants and the reference), interleaved."""
    calls = {name: (lambda n=name, m=model: time_call(lambda: run(n, m), plan.device)) for name, model in models.items()}
    return interleaved(calls, plan)


def add_throughput_rows(report: Report, section: str, size: str, case: str, variants, seconds: dict, tokens: int):
    """One tokens/s row per variant of ours, each against the reference, from seconds per call of `tokens`."""
    for name in variants:
        report.add(
            Row(
                section, size, f"{case} {name}", "tok/s",
                throughput(seconds[name], tokens), throughput(seconds["reference"], tokens),
            )
        )


def bench_forward(report: Report, size: str, variants: dict, reference, plan: Plan):
    models = {**variants, "reference": reference}
    for batch, seq in plan.forward_shapes:
        if seq > reference.config.n_positions:
            continue
        input_ids = random_tokens(batch, seq, plan.device)
        for dtype_name in ("fp32", "bf16-autocast"):

            def forward(name, model):
                with torch.inference_mode(), autocast(plan.device, dtype_name):
                    model(input_ids, use_cache=False)

            seconds = timed_candidates(models, forward, plan)
            add_throughput_rows(report, "forward", size, f"b{batch}x{seq} {dtype_name}", variants, seconds, batch * seq)


def bench_train(report: Report, size: str, variants: dict, reference, plan: Plan):
    """One step of AdamW over all parameters; variants named "... fused AdamW" use torch's fused kernel, the others
    (and the reference) its default one."""
    batch, seq = plan.train_shape
    seq = min(seq, reference.config.n_positions)
    input_ids = random_tokens(batch, seq, plan.device)
    models = {**variants, "reference": reference}
    optimizers = {
        name: torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.1, fused=True if "fused" in name else None)
        for name, model in models.items()
    }

    for dtype_name in ("fp32", "bf16-autocast"):

        def step(name, model):
            with autocast(plan.device, dtype_name):
                loss = model(input_ids, labels=input_ids, use_cache=False).loss
            loss.backward()
            optimizers[name].step()
            optimizers[name].zero_grad(set_to_none=True)

        for model in models.values():
            model.train()
        seconds = timed_candidates(models, step, plan)
        add_throughput_rows(report, "train", size, f"b{batch}x{seq} {dtype_name}", variants, seconds, batch * seq)
    for model in models.values():
        model.eval()
        model.zero_grad(set_to_none=True)


class FirstTokenClock:
    """A generate() streamer that notes when the first new token arrives (the first put() is the prompt)."""

    def __init__(self):
        self.calls = 0
        self.first_token_at = None

    def put(self, value):
        self.calls += 1
        if self.calls == 2:
            self.first_token_at = time.perf_counter()

    def end(self):
        pass


def timed_generate(model, input_ids, new_tokens: int, device: str, **options):
    """(seconds to the first new token, seconds in all, new tokens) of one greedy generate() call."""
    clock = FirstTokenClock()
    start = time.perf_counter()
    output = model.generate(
        input_ids,
        attention_mask=torch.ones_like(input_ids),
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,  # random weights may well produce <|endoftext|>: never stop early
        do_sample=False,
        pad_token_id=50256,
        streamer=clock,
        **options,
    )
    end = time.perf_counter()
    first = (clock.first_token_at or end) - start
    return first, end - start, output[:, input_ids.shape[1] :]


def timed_lean_loop(model, input_ids, new_tokens: int, device: str):
    """The same figures for gpt2_scratch.generation.generate_tokens."""
    start = time.perf_counter()
    first = None
    tokens = []
    for token in generate_tokens(model, input_ids, new_tokens):
        tokens.append(token)
        if first is None:
            first = time.perf_counter() - start
    return first, time.perf_counter() - start, torch.stack(tokens, dim=1)


def llama_cpp_models(ours, folder: Path) -> dict:
    """llama.cpp (llama-cpp-python) over our weights exported to GGUF F32, F16 and Q8_0, keyed by the precision of
    ours each is compared with; empty when llama_cpp is not installed or GPT-2's tokenizer (which llama.cpp needs
    in the file) is not beside the repository."""
    try:
        import llama_cpp
    except ImportError:
        print("  (llama.cpp rows skipped: pip install llama-cpp-python to add them)")
        return {}
    from gpt2_scratch.conversion import save_model

    tokenizer = REPO_ROOT.parent / "shared" / "data" / "gpt2-tokenizer"
    if not tokenizer.is_dir():
        print(f"  (llama.cpp rows skipped: no GPT-2 tokenizer at {tokenizer} to embed in the GGUF files)")
        return {}
    models = {}
    for dtype, precision in (("float32", "float32"), ("float16", "float16"), ("q8_0", "int8")):
        path = save_model(ours, folder / dtype, layout="gguf", dtype=dtype, tokenizer=tokenizer) / "model.gguf"
        models[precision] = llama_cpp.Llama(
            str(path), n_ctx=256, n_threads=torch.get_num_threads(), n_threads_batch=torch.get_num_threads(),
            verbose=False,
        )
    return models


def timed_llama_cpp(llm, input_ids, new_tokens: int):
    """The figures of timed_lean_loop for llama.cpp: greedy, one token at a time through llama_cpp.Llama.eval."""
    import numpy as np

    llm.reset()
    start = time.perf_counter()
    llm.eval(input_ids[0].tolist())
    tokens = [int(np.argmax(llm.scores[llm.n_tokens - 1]))]
    first = time.perf_counter() - start
    for _ in range(new_tokens - 1):
        llm.eval(tokens[-1:])
        tokens.append(int(np.argmax(llm.scores[llm.n_tokens - 1])))
    return first, time.perf_counter() - start, torch.tensor([tokens])


def bench_generate(report: Report, size: str, ours, reference, plan: Plan):
    """Greedy decoding. "lean loop <precision>" is the lean loop over decoding_model(ours, precision); the 16-bit
    and int8 ones compute with rounded weights, so their tokens may part from the float32 reference's where two
    logits are nearly tied. Each of them is also compared with our float32 lean loop, and llama.cpp (when
    installed) with our lean loop in the same precision."""
    new = plan.new_tokens
    decoders = {precision: decoding_model(ours, precision) for precision in PRECISIONS}
    with tempfile.TemporaryDirectory(prefix="gpt2-scratch-gguf-") as folder:
        llamas = llama_cpp_models(ours, Path(folder)) if plan.device == "cpu" else {}
        for batch in plan.generate_batches:
            input_ids = random_tokens(batch, plan.prompt_length, plan.device)
            candidates = {
                "ours generate()": lambda: timed_generate(ours, input_ids, new, plan.device),
                "ours generate(static cache)": lambda: timed_generate(
                    ours, input_ids, new, plan.device, cache_implementation="static"
                ),
                **{
                    f"ours lean loop {precision}": lambda d=decoder: timed_lean_loop(d, input_ids, new, plan.device)
                    for precision, decoder in decoders.items()
                },
                **({
                    f"llama.cpp {precision}": lambda m=llm: timed_llama_cpp(m, input_ids, new)
                    for precision, llm in llamas.items()
                } if batch == 1 else {}),
                "reference": lambda: timed_generate(reference, input_ids, new, plan.device),
            }
            with torch.inference_mode():
                results = interleaved(candidates, plan)
            add_generate_rows(report, size, batch, results, new)


# llama.cpp's export in each precision -> our precisions with as many bytes a weight (F16 stands for both 16-bit ones)
SAME_BYTES_AS_LLAMA_CPP = {"float32": ("float32",), "float16": ("bfloat16", "float16"), "int8": ("int8",)}


def add_generate_rows(report: Report, size: str, batch: int, results: dict, new: int):
    """Each candidate against the reference (decode rate, time to the first token at batch 1), and the lean loops
    and llama.cpp against our float32 lean loop and llama.cpp against ours with as many bytes a weight."""

    def decode(name):
        return [batch * (new - 1) / (total - first) for first, total, _ in results[name]]

    reference_tokens = results["reference"][0][2]
    for name in results:
        if name == "reference":
            continue
        same = all(torch.equal(tokens, reference_tokens) for _, _, tokens in results[name])
        note = "greedy tokens identical to the reference" if same else "greedy tokens differ from the reference"
        report.add(Row("generate", size, f"b{batch} {name} decode", "new tok/s", decode(name), decode("reference"), note=note))
        if batch == 1:
            report.add(
                Row(
                    "generate", size, f"b{batch} {name} first token", "ms",
                    [1e3 * first for first, _, _ in results[name]],
                    [1e3 * first for first, _, _ in results["reference"]],
                    higher_is_better=False,
                )
            )
        precision = name.rsplit(" ", 1)[-1]
        if precision in PRECISIONS and name != "ours lean loop float32":
            report.add(Row("generate", size, f"b{batch} {name} decode vs ours float32", "new tok/s", decode(name),
                           decode("ours lean loop float32"), note="reference = ours lean loop float32"))
        if name.startswith("llama.cpp"):
            for ours in SAME_BYTES_AS_LLAMA_CPP[precision]:
                report.add(Row("generate", size, f"b{batch} ours lean loop {ours} decode vs {name}", "new tok/s",
                               decode(f"ours lean loop {ours}"), decode(name), note=f"reference = {name}"))


# ---------------------------------------------------------------------------------------------------------------------
# Achieved FLOP/s against the matmul ceiling
# ---------------------------------------------------------------------------------------------------------------------


def matmul_ceiling(plan: Plan, dtype: torch.dtype) -> list[float]:
    """FLOP/s of the best of two large matmuls on this device, per repetition: the most the hardware gives us. One
    is square (n x n x n); the other has the shape of GPT-2 small's widest layer over 4096 tokens
    (4096 x 768 x 3072), which MKL runs faster than a square one on some CPUs."""
    n = plan.matmul_size
    shapes = [(n, n, n), (4096, 768, 3072)]
    operands = [
        (torch.randn(m, k, device=plan.device, dtype=dtype), torch.randn(k, o, device=plan.device, dtype=dtype))
        for m, k, o in shapes
    ]
    for a, b in operands:
        time_call(lambda: a @ b, plan.device)
    return [
        max(2 * a.shape[0] * a.shape[1] * b.shape[1] / time_call(lambda: a @ b, plan.device) for a, b in operands)
        for _ in range(plan.repeats)
    ]


def bench_mfu(report: Report, size: str, plan: Plan):
    """Achieved FLOP/s of the forward and training rows already measured, as a share of the matmul ceiling."""
    config = ScratchGPT2Config.from_preset(size)
    ceilings = {"fp32": matmul_ceiling(plan, torch.float32), "bf16-autocast": matmul_ceiling(plan, torch.bfloat16)}
    best_ceiling = {name: max(values) for name, values in ceilings.items()}
    for name, values in ceilings.items():
        case = f"matmul ceiling, best of {plan.matmul_size}^3 and 4096x768x3072, {name}"
        report.add(Row("mfu", size, case, "GFLOP/s", [v / 1e9 for v in values]))
    for row in list(report.rows):
        if row.size != size or row.section not in ("forward", "train"):
            continue
        shape, dtype_name = row.case.split()[:2]
        seq = int(shape.split("x")[1])
        flops = flops_per_token(config, seq) / (1 if row.section == "train" else 3)  # training: 3 forwards' worth

        def share(tokens_per_second):
            return [100 * t * flops / best_ceiling[dtype_name] for t in tokens_per_second]

        report.add(
            Row(
                "mfu", size, f"{row.section} {row.case}", f"% of {dtype_name.split('-')[0]} ceiling",
                share(row.ours), share(row.reference),
            )
        )


# ---------------------------------------------------------------------------------------------------------------------
# Peak memory, each in a fresh process
# ---------------------------------------------------------------------------------------------------------------------


def probe(*arguments: str) -> dict:
    command = [sys.executable, str(REPO_ROOT / "benchmarks" / "memory_probe.py"), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT)
    if result.returncode != 0:
        raise RuntimeError(f"memory probe {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def gigabytes(measurement: dict) -> tuple[float, float, float]:
    """(peak RssAnon, the part of it above the imports' baseline, VmHWM) in GB."""
    peak, baseline = measurement["peak_anon_bytes"], measurement["baseline_anon_bytes"]
    return peak / 1e9, (peak - baseline) / 1e9, measurement["vmhwm_bytes"] / 1e9


def write_random_checkpoint(size: str, folder: Path) -> float:
    """A checkpoint of ours with random weights, written tensor by tensor so that even the XL preset (6.2 GB in
    float32) never sits in memory; returns the size of its weights in GB."""
    from gpt2_scratch.conversion.containers.safetensors_stream import write_shard

    config = ScratchGPT2Config.from_preset(size)
    with torch.device("meta"):
        shapes = {name: tuple(t.shape) for name, t in ScratchGPT2ForCausalLM(config).state_dict().items()}
    shapes.pop("lm_head.weight")  # tied to transformer.wte.weight, stored once
    generator = torch.Generator().manual_seed(0)
    tensors = ((name, 0.02 * torch.randn(shape, generator=generator)) for name, shape in shapes.items())
    folder.mkdir(parents=True)
    config.save_pretrained(folder)
    write_shard(folder / "model.safetensors", list(shapes.items()), torch.float32, tensors)
    return sum(4 * torch.Size(shape).numel() for shape in shapes.values()) / 1e9


def fits_training(size: str, models: int = 1) -> bool:
    """Whether `models` models can train at once: one fp32 AdamW step holds weights, gradients and two moments
    (16 bytes a parameter) plus activations."""
    config = ScratchGPT2Config.from_preset(size)
    with torch.device("meta"):
        parameters = sum(p.numel() for p in ScratchGPT2ForCausalLM(config).parameters())
    return models * 16 * parameters < 0.6 * (harness.total_memory_gb() or 0) * 1e9


def bench_memory(report: Report, size: str, plan: Plan):
    with tempfile.TemporaryDirectory(prefix="gpt2-scratch-bench-") as folder:
        ours_dir, reference_dir, plain_dir = (Path(folder) / name for name in ("ours", "reference", "plain"))
        weights_gb = write_random_checkpoint(size, ours_dir)
        note = f"weights {weights_gb:.2f} GB in fp32"

        converted = [
            gigabytes(probe("convert", "--impl", impl, "--checkpoint", str(ours_dir), "--output", str(output)))
            for impl, output in (("ours", reference_dir), ("plain", plain_dir))
        ]
        case = "convert ours -> transformers checkpoint, reference: from_pretrained + save_pretrained"
        add_memory_rows(report, size, case, converted, note)
        for dtype in ("float32", "bfloat16"):
            reference = gigabytes(probe("load", "--dtype", dtype, "--checkpoint", str(reference_dir), "--impl", "reference"))
            ours = gigabytes(probe("load", "--dtype", dtype, "--checkpoint", str(ours_dir), "--impl", "ours"))
            add_memory_rows(report, size, f"load fp32 checkpoint as {dtype}, from_pretrained", [ours, reference], note)
            converted = gigabytes(
                probe("load", "--dtype", dtype, "--checkpoint", str(reference_dir), "--impl", "ours-converted")
            )
            case = f"load fp32 transformers checkpoint as {dtype}, ours by conversion.load_model"
            add_memory_rows(report, size, case, [converted, reference], note)
        if not fits_training(size):
            print(f"  (training step of {size} skipped: it would not fit in this machine's memory)")
            return
        batch, seq = plan.train_shape
        pairs = [
            gigabytes(probe("train", "--impl", impl, "--size", size, "--batch", str(batch), "--seq", str(seq)))
            for impl in ("ours", "reference")
        ]
        add_memory_rows(report, size, f"train step b{batch}x{seq} fp32 AdamW", pairs, note)


def add_memory_rows(report: Report, size: str, case: str, pairs: list[tuple[float, float, float]], note: str):
    """Peak RssAnon, the part of it above the imports' baseline, and VmHWM (which also counts clean pages of mapped
    files, for contrast); pairs holds ours and, if any, the reference's."""
    reference = pairs[1] if len(pairs) > 1 else None
    for index, what in ((0, "peak RssAnon"), (1, "RssAnon above imports"), (2, "VmHWM, counts mapped files")):
        report.add(
            Row(
                "memory", size, f"{case}: {what}", "GB",
                [pairs[0][index]], [reference[index]] if reference else None, higher_is_better=False, note=note,
            )
        )


# ---------------------------------------------------------------------------------------------------------------------


def parse_arguments(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--sizes", default="small", help="comma-separated presets: tiny, small, medium, large, xl")
    parser.add_argument(
        "--quick", action="store_true", help="fewer shapes and repetitions, batch-1 decoding only, and no memory "
        "section unless --sections names it (its fresh processes take minutes): a few minutes on a 2-core CPU"
    )
    parser.add_argument(
        "--sections", help=f"comma-separated subset of {', '.join(SECTIONS)} (default: all; all but memory with --quick)"
    )
    parser.add_argument(
        "--threads", type=int, help="torch intra-op threads (default: torch's choice); 1 gives steadier figures on a "
        "machine that other work keeps busy, where threads waiting for each other at every operator dominate"
    )
    parser.add_argument("--new-tokens", type=int, help="tokens to generate (default 128, or 32 with --quick)")
    parser.add_argument("--output", type=Path, help="JSON file to write (default benchmarks/results/<date>.json)")
    args = parser.parse_args(argv)
    args.sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    if args.sections is None:
        args.sections = ",".join(section for section in SECTIONS if not (args.quick and section == "memory"))
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.error("--device cuda was asked for but torch sees no CUDA GPU")
    if "mfu" in args.sections and not {"forward", "train"} & set(args.sections):
        parser.error("the mfu section reports on the forward and train figures: add forward and/or train")
    for size in args.sizes:
        ScratchGPT2Config.from_preset(size)  # an unknown preset fails here, before anything is measured
    return args


def main(argv=None):
    args = parse_arguments(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    plan = Plan(args.quick, args.device)
    plan.new_tokens = args.new_tokens or plan.new_tokens
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d-%H%M%S")
    output = args.output or REPO_ROOT / "benchmarks" / "results" / f"{stamp}-{args.device}.json"
    report = Report(machine_description(args.device), {**vars(args), "output": str(output), "plan": vars(plan)})
    print(f"machine: {report.machine}", flush=True)
    for size in args.sizes:
        print(f"== {size}", flush=True)
        if "memory" in args.sections:
            bench_memory(report, size, plan)
        if not set(args.sections) - {"memory"}:
            continue
        ours, reference = build_pair(size, args.device)
        padded = pad_vocabulary(copy.deepcopy(ours), 64)
        if "forward" in args.sections:
            bench_forward(report, size, {"ours": ours, "ours padded vocab": padded}, reference, plan)
        if "generate" in args.sections:
            bench_generate(report, size, ours, reference, plan)
        if "train" in args.sections:  # last: training steps change the weights
            variants = {"ours": ours}
            if fits_training(size, models=3):
                variants["ours padded vocab + fused AdamW"] = padded
            bench_train(report, size, variants, reference, plan)
        if "mfu" in args.sections:
            bench_mfu(report, size, plan)
        del ours, padded, reference
        gc.collect()
    print()
    print(markdown_table(report.rows))
    report.settings["load_average_at_end"] = os.getloadavg()
    report.write_json(output)
    print(f"\nwritten {output}")


if __name__ == "__main__":
    main()
