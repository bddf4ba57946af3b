"""Instruction fine-tuning from start to finish: data, model, full or LoRA training on the shared loop
(`gpt2_scratch.training.train`), the final model, and greedy responses for the test split.

Every step runs unchanged on one process or many (`accelerate launch`): the loop prepares model and loaders
for DDP/FSDP, the responses are generated in shards and gathered, and only the main process writes files.

Files written in `out_dir` (see docs/instruction-tuning.md):
- checkpoint-<step>/            the loop's checkpoints (weights, optimizer, RNG states, trainer_state.json); --resume
- metrics.jsonl, loss.png       losses at every evaluation; the loss curves against epochs and tokens seen
- model/                        the final model as a plain checkpoint (LoRA merged) with tokenizer (and its
                                chat_template: the prompt format as a chat template), config,
                                training_args.json, metrics.json, provenance.json and loss.png
- lora-adapter/                 with LoRA: the adapter alone (peft format), loadable with AutoPeftModelForCausalLM
- base-model/                   with LoRA on a base from_pretrained cannot load (a preset's random weights, another
                                layout): the base the adapter applies to, which adapter_config.json names
- instruction-data-with-response.json   the test records with `model_response`, in the course's format
- judge-scores.json             with a judge: the average and per-item scores
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch

from ..conversion.pretrained import read_weights_for
from ..data.templates import TEMPLATES, get_template
from ..evaluation.judge import ChatCompletionsJudge, judge_responses
from ..evaluation.perplexity import loss_and_perplexity
from ..hub_cards.card import DEFAULT_EVAL_DATASETS
from ..lora import LORA_TARGET_MODULES, add_lora, merge_lora, parameter_counts
from ..provenance import Provenance, dataset_reference
from ..modeling import PRESETS, ScratchGPT2Config, ScratchGPT2ForCausalLM
from ..modeling.configuration_scratch_gpt2 import dropouts
from ..staging import staged_folder
from ..tokenization import load_tokenizer
from ..training import TrainConfig, make_loader, train
from ..training.config import setting
from ..training.loop import launch_facts, make_accelerator
from .collate import InstructionCollator
from .data import InstructionDataset, load_records, split_records
from .responses import generate_responses, save_responses, with_responses

RESPONSES_FILE = "instruction-data-with-response.json"
JUDGE_FILE = "judge-scores.json"
FINAL_MODEL_DIR = "model"
ADAPTER_DIR = "lora-adapter"
BASE_DIR = "base-model"


# The course's fine-tuning settings where they differ from TrainConfig's defaults, which are pretraining's: a low
# constant rate for two epochs, no clipping, an evaluation every 5 steps, mixed precision where the device has it.
TRAINING_DEFAULTS = {"epochs": 2, "learning_rate": 5e-5, "min_lr_ratio": 1.0, "grad_clip": None, "eval_every": 5,
                     "mixed_precision": "auto"}


@dataclass
class InstructConfig:
    """What to fine-tune on what, and the responses after; the optimisation itself is a `TrainConfig` (start from
    TRAINING_DEFAULTS). `gpt2-scratch instruct` takes both as options."""

    model: str = setting(help="a preset (tiny, small, medium, ...: random weights, for trials) or a checkpoint "
                         "gpt2_scratch.conversion.load_model reads: our folder, transformers' GPT-2 (e.g. "
                         "openai-community/gpt2-medium), OpenAI's release, the course's layout")
    data: str | None = setting(None, "JSON/JSONL file, saved dataset folder or Hub dataset name (default: the "
                               "course's instruction-data.json, downloaded and verified)")
    template: str = setting("alpaca", "prompt template", choices=sorted(TEMPLATES))
    split: tuple[float, ...] = setting((0.85, 0.10), "TRAIN TEST [VALIDATION] ratios in file order; validation "
                                       "defaults to the rest (default: 0.85 0.10)", metavar="RATIO")
    tokenizer: str | None = setting(None, "folder with GPT-2's encoder.json + vocab.bpe (default: the model's own "
                                    "tokenizer if saved with it, else GPT-2's, downloaded and verified)")
    dropout: float | None = setting(0.0, "the model's dropout rates while fine-tuning (None keeps the checkpoint's)")
    max_length: int | None = setting(None, "truncate training sequences to this many tokens (default: the context)")
    mask_prompt: bool = setting(False, "learn only from the response tokens (and the end-of-text token)")
    lora: bool = setting(False, "train LoRA adapters instead of every weight")
    lora_rank: int = setting(16, "rank of the LoRA adapters")
    lora_alpha: int = setting(16, "LoRA scaling numerator (the update is scaled by alpha / rank)")
    lora_dropout: float = setting(0.05, "dropout on the LoRA adapters' input")
    lora_targets: tuple[str, ...] = setting(LORA_TARGET_MODULES, "module names to adapt")
    max_new_tokens: int = setting(256, "longest greedy response to each test record")
    generation_batch_size: int = setting(8, "test records answered at once")
    num_responses: int | None = setting(None, "respond to the first N test records only (default: all)")
    judge_url: str | None = setting(None, "score the responses with this chat-completions endpoint after "
                                    "training, e.g. http://localhost:11434/v1 (Ollama)")
    judge_model: str = setting("llama3", "the judge's model name at --judge-url")
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        if len(self.split) == 2:
            self.split = (*self.split, None)
        if len(self.split) != 3:
            raise ValueError(f"split takes TRAIN TEST [VALIDATION] ratios, got {list(self.split)}.")
        self.split, self.lora_targets = tuple(self.split), tuple(self.lora_targets)


def load_base_model(source: str, dropout: float | None) -> ScratchGPT2ForCausalLM:
    overrides = {} if dropout is None else dropouts(dropout)
    if source in PRESETS:
        return ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset(source, **overrides))
    from ..conversion import load_model

    return load_model(source, **overrides).train()


def finetune(config: InstructConfig, train_config: TrainConfig) -> dict:
    """Run instruction fine-tuning; return the final metrics (also written to out_dir/model/metrics.json)."""
    accelerator = make_accelerator(train_config)
    out_dir = Path(train_config.out_dir)
    template = get_template(config.template)

    splits = split_records(load_records(config.data), *config.split)
    if not splits.train or not splits.validation:
        raise ValueError(f"the split {splits.sizes()} leaves no training or no validation record; change the ratios.")
    tokenizer = load_tokenizer(config.model, config.tokenizer)
    tokenizer.chat_template = template.chat_template()  # saved with the model: chat messages -> the training prompt
    torch.manual_seed(train_config.seed)  # a preset's random initialisation repeats
    model = load_base_model(config.model, config.dropout)
    context = model.config.n_positions
    collator = InstructionCollator(
        pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, mask_prompt=config.mask_prompt,
        max_length=min(config.max_length or context, context),
    )
    train_loader = make_loader(InstructionDataset(splits.train, tokenizer, template), train_config.batch_size,
                               shuffle=True, seed=train_config.seed, drop_last=True, collate_fn=collator)
    val_loader = make_loader(InstructionDataset(splits.validation, tokenizer, template), train_config.batch_size,
                             shuffle=False, collate_fn=collator)

    trained = model
    if config.lora:
        # The loop trains (and checkpoints) the model inside the peft wrapper: the same modules, with LoRA layers.
        peft_model = add_lora(model, config.lora_rank, config.lora_alpha, config.lora_dropout, config.lora_targets)
        trained = peft_model.base_model.model
    train_config = replace(
        train_config,
        sample_prompt=template.query(splits.validation[0]),
        sample_temperature=0.0,  # greedy: the evaluation sample shows the answer the model would give
        extra={**train_config.extra, "instruct": asdict(config), "data": splits.sizes(),
               "parameters": parameter_counts(trained)},
    )
    provenance = instruction_provenance(config)
    result = train(trained, tokenizer, train_loader, val_loader, train_config, accelerator, provenance)

    checkpoint = Path(result["checkpoint"])
    final = final_model(checkpoint, config, accelerator.device)
    metrics = final_metrics(final, result, val_loader)
    records = respond(final, tokenizer, splits.test[: config.num_responses], template, config, accelerator)

    if accelerator.is_main_process:
        save_responses(out_dir / RESPONSES_FILE, records)
        if config.judge_url:
            judged = judge_responses(records, ChatCompletionsJudge(config.judge_url, config.judge_model), template)
            judged.save(out_dir / JUDGE_FILE)
            metrics["judge_score"] = judged.average
        save_final_model(final, tokenizer, out_dir, config, train_config, metrics, provenance,
                         launch_facts(accelerator))
        if config.lora:
            save_adapter(checkpoint, config, tokenizer, out_dir)
    accelerator.end_training()  # waits for every process, then closes the process group
    return metrics


def final_model(checkpoint: Path, config: InstructConfig, device) -> ScratchGPT2ForCausalLM:
    """The trained model read back from its last checkpoint, on every process whatever the sharding was; with
    LoRA, the adapters merged into the weights."""
    if config.lora:
        model = merge_lora(trained_lora_model(checkpoint, config))
    else:
        model = load_checkpoint_weights(load_base_model(config.model, dropout=0.0), checkpoint)
    model.generation_config.update(do_sample=False, top_k=None, temperature=None, max_new_tokens=config.max_new_tokens)
    return model.to(device).eval()


def trained_lora_model(checkpoint: Path, config: InstructConfig):
    """The peft model (base weights + trained adapters) saved in a checkpoint of a LoRA run."""
    peft_model = add_lora(load_base_model(config.model, dropout=0.0), config.lora_rank, config.lora_alpha, 0.0,
                          config.lora_targets)
    load_checkpoint_weights(peft_model.base_model.model, checkpoint)
    return peft_model


def save_adapter(checkpoint: Path, config: InstructConfig, tokenizer, out_dir: Path) -> Path:
    """out_dir/lora-adapter: the trained adapters alone, which `AutoPeftModelForCausalLM.from_pretrained` loads by
    itself. Its adapter_config.json records the dropout the run trained with and a base that from_pretrained can
    load: the Hub id or checkpoint folder (as an absolute path, which peft needs wherever it runs from) that the
    run started from, else the base saved in out_dir/base-model (a preset's random initial weights, another layout)."""
    peft_model = trained_lora_model(checkpoint, config)
    save_base = must_save_base(config.model)
    base = out_dir / BASE_DIR if save_base else config.model
    adapter_config = peft_model.peft_config["default"]
    adapter_config.lora_dropout = config.lora_dropout  # the adapter was rebuilt without dropout, for inference
    adapter_config.base_model_name_or_path = str(Path(base).resolve()) if save_base or Path(base).exists() else base
    peft_model.save_pretrained(out_dir / ADAPTER_DIR, save_embedding_layers=False)  # the embeddings are frozen
    if save_base:
        peft_model.unload().save_pretrained(base)  # the frozen base weights, as the run started from them
        tokenizer.save_pretrained(base)
    return out_dir / ADAPTER_DIR


def must_save_base(model: str) -> bool:
    """Whether from_pretrained cannot load the base `model` as given: a preset (random weights) or a local
    checkpoint without config.json (OpenAI's release, the course's or nanoGPT's files, GGUF, llm.c)."""
    return model in PRESETS or (Path(model).exists() and not (Path(model) / "config.json").is_file())


def load_checkpoint_weights(model, checkpoint: Path):
    """Load a checkpoint's weights into `model`, which must have exactly those tensors (the tied lm_head may be
    left out)."""
    model.load_state_dict(read_weights_for(model, checkpoint), strict=False)  # strict: checked by read_weights_for
    model.tie_weights()
    return model


def final_metrics(model, result: dict, val_loader) -> dict:
    """Train loss as last logged; validation loss and perplexity of the final (merged) model on the whole split."""
    metrics = {key: result.get(key) for key in ("train_loss", "tokens_seen", "step")}
    measured = loss_and_perplexity(model, val_loader)
    metrics["val_loss"], metrics["val_perplexity"] = measured["loss"], measured["perplexity"]
    return metrics


def instruction_loss(model, tokenizer, data: str | None = None, split: str = "validation", template: str = "alpaca",
                     batch_size: int = 8) -> dict:
    """Loss per token and perplexity of `model` on one part of the course's split of instruction records `data`
    (see `load_records`; split "all" takes every record), as fine-tuning measures it."""
    records = load_records(data)
    if split != "all":
        records = getattr(split_records(records), split)
    collator = InstructionCollator(tokenizer.pad_token_id, tokenizer.eos_token_id, max_length=model.config.n_positions)
    dataset = InstructionDataset(records, tokenizer, get_template(template))
    result = loss_and_perplexity(model, make_loader(dataset, batch_size, shuffle=False, collate_fn=collator))
    return {**result, "data": data or "instruction-data.json", "split": split, "records": len(records)}


def respond(model, tokenizer, records: list[dict], template, config: InstructConfig, accelerator) -> list[dict]:
    """Greedy responses, each process taking a contiguous share of the records; every process gets them all."""
    from accelerate.utils import gather_object

    with accelerator.split_between_processes(records) as share:
        responses = generate_responses(model, tokenizer, share, template, config.max_new_tokens,
                                       config.generation_batch_size, show_progress=accelerator.is_main_process)
    if accelerator.num_processes > 1:
        responses = gather_object(responses)
    return with_responses(records, responses)


def instruction_provenance(config: InstructConfig) -> Provenance:
    dataset = dataset_reference(config.data) if config.data else DEFAULT_EVAL_DATASETS["instruction-tuned"]
    return Provenance(kind="instruction-tuned", base_model=config.model,
                      method="lora" if config.lora else "full fine-tuning",
                      datasets=[dataset["name"]], eval_dataset=dataset)


def save_final_model(model, tokenizer, out_dir: Path, config: InstructConfig, train_config: TrainConfig,
                     metrics: dict, provenance: Provenance, launch: dict) -> None:
    """out_dir/model: a plain checkpoint with the records a model card is built from (built under a temporary
    name and renamed into place, replacing an earlier one); `launch`: how many processes of which kind trained it."""
    training_args = {**{k: v for k, v in train_config.to_dict().items() if k != "extra"}, **asdict(config),
                     **{f"num_{split}": n for split, n in train_config.extra["data"].items()}, **launch}
    with staged_folder(out_dir / FINAL_MODEL_DIR, replace=True) as target:
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
        for name, payload in (("training_args.json", training_args), ("metrics.json", metrics)):
            (target / name).write_text(json.dumps(payload, indent=2, default=str) + "\n")
        provenance.write(target)
        if (out_dir / "loss.png").is_file():
            shutil.copyfile(out_dir / "loss.png", target / "loss.png")
