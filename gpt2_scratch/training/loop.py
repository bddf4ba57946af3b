"""The training loop: one function, `train`, that runs on one CPU, one or many GPUs (DDP or FSDP), in full or
mixed precision, because Accelerate places the model and data and reduces across processes.

One optimizer step = `grad_accum_steps` micro-batches per process. The loss is the mean over every predicted
token of the step, on all processes: each micro-batch's loss is summed over its tokens and divided by the count
of the whole step (`num_items_in_batch`), so that accumulation and data parallelism give the same update as one
big batch.
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from tqdm.auto import tqdm  # tqdm.write: a line between bars

from ..progress import progress_bar
from ..provenance import FILE_NAME as PROVENANCE_FILE, Provenance
from ..staging import reporting_full_disk
from .checkpoint import (
    Progress,
    UnreadableCheckpointError,
    load_training_state,
    prune_checkpoints,
    refuse_changed_settings,
    resolve_resume,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from .config import TrainConfig
from .measurements import (
    device_peak_flops,
    evaluate_loss,
    flops_per_token,
    label_count,
    perplexity,
    sample_continuation,
)
from .optim import build_optimizer, cosine_schedule_with_warmup
from .figures import plot_losses


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped before applying that step or saving the weights that gave it."""


def make_accelerator(config: TrainConfig) -> Accelerator:
    """The Accelerator of a run. Processes started by torchrun or `accelerate launch --multi_gpu` on a machine
    without a GPU are told to use the CPU, which makes Accelerate join them over gloo. FSDP asked for by the launch
    (`--use_fsdp`, examples/accelerate/fsdp.yaml) is honoured on CPU processes too: Accelerate sets it up only
    for GPUs, while torch's FSDP2 (`fully_shard`) runs over gloo as well, which is how the tests check it."""
    cpu_processes = int(os.environ.get("WORLD_SIZE", "1")) > 1 and not torch.cuda.is_available()
    accelerator = Accelerator(mixed_precision=config.mixed_precision, log_with=config.report_to,
                              project_dir=config.out_dir, cpu=cpu_processes)
    if cpu_processes and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true"):
        shard_on_cpu(accelerator)
    return accelerator


def shard_on_cpu(accelerator: Accelerator) -> None:
    """Turn the CPU processes' data parallelism into FSDP2, configured from the launch's FSDP_* variables as
    Accelerate configures it on GPUs."""
    from accelerate import FullyShardedDataParallelPlugin
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    plugin = FullyShardedDataParallelPlugin(fsdp_version=int(os.environ.get("FSDP_VERSION", "2")))
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    # Both shared states, as Accelerate's own set-up does: a state made later copies the partial one.
    accelerator.state.distributed_type = PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    accelerator.state.fsdp_plugin = plugin


def launch_facts(accelerator: Accelerator) -> dict:
    """What this run runs on, as training_args.json records it and the run prints at its start."""
    return {"num_processes": accelerator.num_processes, "distributed_type": accelerator.distributed_type.value,
            "mixed_precision": accelerator.mixed_precision, "device": str(accelerator.device),
            "asked_processes": asked_processes()}


def asked_processes() -> int | None:
    """The process count `accelerate launch` was given, when it started this process (else None). Its plain
    launcher starts one process whatever `--num_processes` says, and tells the process nothing: its command line,
    this process's parent, is where the count is."""
    try:
        with open(f"/proc/{os.getppid()}/cmdline", "rb") as cmdline:
            argv = [word.decode(errors="replace") for word in cmdline.read().split(b"\0") if word]
    except OSError:
        return None
    # `accelerate launch ARGS` or `python -m accelerate.commands.launch ARGS`: where ARGS start.
    starts = [i + 2 for i, word in enumerate(argv[:-1]) if Path(word).name == "accelerate" and argv[i + 1] == "launch"]
    starts += [i + 1 for i, word in enumerate(argv) if word == "accelerate.commands.launch"]
    if not starts:
        return None
    from accelerate.commands.launch import launch_command_parser

    try:
        args, _ = launch_command_parser().parse_known_args(argv[starts[0] :])
    except SystemExit:
        return None
    return args.num_processes


def announce_launch(facts: dict) -> None:
    """Print what the run runs on (with the run's other reports, on stdout), and warn (on stderr) when a launch
    asked for more processes than run."""
    tqdm.write(f"training on {facts['num_processes']} process(es), distributed type {facts['distributed_type']}, "
               f"mixed precision {facts['mixed_precision']}, device {facts['device']}")
    asked = facts["asked_processes"]
    if asked and asked != facts["num_processes"]:
        print(f"warning: accelerate launch was asked for {asked} processes, but this run has {facts['num_processes']}: "
              f"without --multi_gpu (or a config file from `accelerate config`) it starts one. On GPUs or on the "
              f"CPU alike, use `accelerate launch --multi_gpu --num_processes {asked} ...` or "
              f"`--config_file examples/accelerate/ddp.yaml` (docs/pretraining.md).", file=sys.stderr)


def train(model, tokenizer, train_loader, val_loader, config: TrainConfig, accelerator: Accelerator | None = None,
          provenance: Provenance | None = None) -> dict:
    """Train `model` (a causal LM returning `.loss` for `labels`) and return the final metrics.

    Loaders yield dicts with `input_ids`, `labels` (-100 = ignored; the model shifts them) and optionally
    `attention_mask`. For an exact `resume`, the training loader's order must depend only on its epoch
    (`gpt2_scratch.training.make_loader` builds such loaders). Writes checkpoints, `config.log_file` and
    loss.png into `config.out_dir`; the returned dict also names the final checkpoint. An `accelerator` passed in
    stays usable afterwards (its process group is not destroyed), so the caller can go on with collective work.
    `provenance` goes into every checkpoint (default: a model pretrained from scratch on the run's data).
    """
    with reporting_full_disk(Path(config.out_dir)):  # the metrics log, plots and checkpoints all go there
        if accelerator is None:
            accelerator, owns_accelerator = make_accelerator(config), True
        else:
            owns_accelerator = False
        loop = PretrainLoop(model, tokenizer, train_loader, val_loader, config, accelerator, owns_accelerator, provenance)
        return loop.run()


def pretraining_provenance(config: TrainConfig) -> Provenance:
    """A model trained from random weights on the data the run recorded (config.extra["data"]["source"])."""
    source = config.extra.get("data", {}).get("source")
    return Provenance(kind="pretrained", source=source, datasets=[Path(source).name] if source else [])


class PretrainLoop:
    """The state of one run and its steps; `train()` is the way in."""

    def __init__(self, model, tokenizer, train_loader, val_loader, config: TrainConfig, accelerator: Accelerator,
                 owns_accelerator: bool = True, provenance: Provenance | None = None):
        self.config, self.accelerator, self.tokenizer = config, accelerator, tokenizer
        self.provenance = provenance or pretraining_provenance(config)
        self.owns_accelerator = owns_accelerator
        self.out_dir = Path(config.out_dir)
        set_seed(config.seed)
        set_generation_defaults(model, tokenizer, config)
        self.model, self.optimizer, self.train_loader, self.val_loader = accelerator.prepare(
            model, build_optimizer(model, config.learning_rate, config.weight_decay), train_loader, val_loader
        )
        if len(self.train_loader) == 0:
            raise ValueError("the training loader yields no batch: lower the batch size or add data.")
        self.steps_per_epoch = math.ceil(len(self.train_loader) / config.grad_accum_steps)
        self.total_steps = self.steps_per_epoch * config.epochs
        if config.max_steps is not None:
            self.total_steps = min(self.total_steps, config.max_steps)
        self.scheduler = None  # built in run(), once the step a resumed run starts from is known
        self.log_path = self.out_dir / config.log_file
        self.progress = Progress()
        self.pending_rng = None  # RNG states of a resumed checkpoint, restored once its data iterator has started
        self.last_metrics: dict = {}
        self.last_saved_step = -1
        self.last_good_checkpoint: Path | None = None  # written or resumed from by this run
        self.pending_checkpoint = None  # (progress, RNG states, files) of a step whose weights are not yet checked
        unwrapped = accelerator.unwrap_model(self.model)
        sequence_length = next(iter(val_loader))["input_ids"].shape[-1] if len(val_loader) else unwrapped.config.n_positions
        self.flops_per_token = flops_per_token(unwrapped.config, sequence_length)
        self.peak_flops = config.peak_flops or device_peak_flops(accelerator.device)
        self.launch = launch_facts(accelerator)

    # ---- the run ----

    def run(self) -> dict:
        if self.accelerator.is_main_process:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            announce_launch(self.launch)
        self.resume_if_asked()
        # The schedule is a function of the settings and the step, so a resumed run follows its own settings. It is
        # stepped here once per optimizer step (Accelerate's wrapper would step it once per process).
        self.scheduler = cosine_schedule_with_warmup(self.optimizer.optimizer, self.config.warmup_steps,
                                                     self.total_steps, self.config.min_lr_ratio, self.progress.step)
        if self.config.report_to:
            self.accelerator.init_trackers("gpt2-scratch", config=trackable(self.config.to_dict()))
        bar = progress_bar(total=self.total_steps, initial=self.progress.step, unit="step", desc="train",
                   disable=not (self.accelerator.is_main_process and self.config.progress_bar))
        self.interval = Interval(self.progress.tokens_seen)
        if self.progress.step == 0 and self.config.eval_every:
            self.evaluate()  # the starting point of the curves: about ln(vocabulary size) for a fresh model
        while self.progress.step < self.total_steps:
            for micro_batches in self.epoch_batches():
                loss = self.step(micro_batches)
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", tok_s=f"{self.interval.last_tokens_per_s:,.0f}")
                self.after_step()
                if self.progress.step >= self.total_steps:
                    break
            else:
                self.progress.epoch += 1
                self.progress.batches_in_epoch = 0
        bar.close()
        if self.last_metrics.get("step") != self.progress.step:
            self.evaluate()  # also the check that the final weights give a finite loss
        if self.last_saved_step != self.progress.step:
            self.save()
            self.write_pending_checkpoint()
        checkpoint = self.last_good_checkpoint
        if self.accelerator.is_main_process:
            plot_losses(self.log_path, self.out_dir / "loss.png")
        if self.owns_accelerator:
            self.accelerator.end_training()
        else:
            for tracker in self.accelerator.trackers:
                tracker.finish()
        return {**self.last_metrics, "checkpoint": str(checkpoint)}

    def epoch_batches(self):
        """The micro-batches left in the current epoch, grouped per optimizer step."""
        loader = self.train_loader
        loader.set_epoch(self.progress.epoch)
        if self.progress.batches_in_epoch:
            loader = self.accelerator.skip_first_batches(loader, self.progress.batches_in_epoch)
        batches = iter(loader)
        group = []
        for batch in batches:
            if self.pending_rng is not None:
                # Starting a loader draws a seed from the global RNG: restore the checkpoint's states after that
                # draw, as the uninterrupted run had made it at the start of this epoch, before the checkpoint.
                restore_rng_states(self.pending_rng)
                self.pending_rng = None
            group.append(batch)
            if len(group) == self.config.grad_accum_steps:
                yield group
                group = []
        if group:
            yield group

    def step(self, micro_batches: list[dict]) -> float:
        """One optimizer step over `micro_batches`; returns the step's mean loss over all processes."""
        accelerator, model = self.accelerator, self.model
        model.train()
        local_items = sum(label_count(batch["labels"]) for batch in micro_batches)
        items = accelerator.reduce(local_items.to(accelerator.device), reduction="sum")
        totals = torch.zeros(2, dtype=torch.float64, device=accelerator.device)  # loss, tokens
        for index, batch in enumerate(micro_batches):
            last = index == len(micro_batches) - 1
            with accelerator.no_sync(model) if not last else nullcontext():
                loss = model(**batch, num_items_in_batch=items).loss
                # DDP averages gradients over processes; the loss is already divided by the global token count.
                accelerator.backward(loss * accelerator.num_processes)
            totals += torch.stack([loss.detach().double(), torch.tensor(batch["input_ids"].numel(), device=totals.device)])
        totals = accelerator.reduce(totals, reduction="sum")
        loss_value = totals[0].item()
        if not math.isfinite(loss_value):
            self.optimizer.zero_grad(set_to_none=True)
            raise self.non_finite(f"the training loss became {loss_value} at step {self.progress.step + 1}")
        # The weights are still those of the last step, and they gave a finite loss: its checkpoint may be written.
        self.write_pending_checkpoint()
        if self.config.grad_clip:
            accelerator.clip_grad_norm_(model.parameters(), self.config.grad_clip)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.progress.step += 1
        self.progress.batches_in_epoch += len(micro_batches)
        self.progress.tokens_seen += int(totals[1].item())
        self.progress.step_losses.append(loss_value)
        self.interval.record(self.progress.tokens_seen)
        return loss_value

    def non_finite(self, what: str) -> NonFiniteLossError:
        """The error that stops the run at a NaN or infinite loss, saying where to go on from."""
        advice = "lower the learning rate, add warmup or gradient clipping, or use bf16 instead of fp16"
        if self.last_good_checkpoint is None:
            where = (f"There is no checkpoint of this run to resume from (save_every={self.config.save_every}): "
                     f"{advice}, then start the run again.")
        else:
            where = f"The last good checkpoint is {self.last_good_checkpoint}: {advice}, then resume from it."
        self.pending_checkpoint = None
        return NonFiniteLossError(f"{what}; the run stopped without applying that step or saving the weights that "
                                  f"gave it. {where}")

    def after_step(self):
        step, config = self.progress.step, self.config
        if config.eval_every and step % config.eval_every == 0:
            self.evaluate()
        if config.save_every and step % config.save_every == 0:
            self.save()

    # ---- evaluation, logging, checkpoints ----

    def evaluate(self) -> dict:
        self.interval.pause()
        accelerator, config, model = self.accelerator, self.config, self.model
        # Accelerate's loader counts finished passes itself; pin it to our epoch so that the training batches
        # evaluated on are the same in a resumed run (whose passes went through a skipping copy of the loader).
        self.train_loader.set_epoch(self.progress.epoch)
        train_loss = evaluate_loss(model, self.train_loader, config.eval_batches, accelerator)
        val_loss = evaluate_loss(model, self.val_loader, config.eval_batches, accelerator)
        for split, loss in (("training", train_loss), ("validation", val_loss)):
            if not math.isfinite(loss):
                raise self.non_finite(f"the {split} loss of the weights after step {self.progress.step} is {loss}")
        tokens_per_s = self.interval.tokens_per_s()
        metrics = {
            "step": self.progress.step,
            "epoch": round(self.progress.epoch + self.progress.batches_in_epoch / len(self.train_loader), 4),
            "tokens_seen": self.progress.tokens_seen,
            "learning_rate": self.scheduler.get_last_lr()[0],
            "step_loss": mean(self.progress.step_losses),
            "train_loss": train_loss,
            "val_loss": val_loss,
            "train_perplexity": perplexity(train_loss),
            "val_perplexity": perplexity(val_loss),
            "tokens_per_s": tokens_per_s,
        }
        if self.peak_flops:
            metrics["mfu"] = tokens_per_s * self.flops_per_token / (self.peak_flops * accelerator.num_processes)
        if accelerator.is_main_process and accelerator.distributed_type.name != "FSDP":
            metrics["sample"] = sample_continuation(
                accelerator.unwrap_model(model), self.tokenizer, config.sample_prompt,
                config.sample_max_new_tokens, config.sample_top_k, config.sample_temperature,
            )
        if accelerator.is_main_process:
            with self.log_path.open("a") as log:
                log.write(json.dumps(metrics) + "\n")
            tqdm.write(
                f"step {metrics['step']} epoch {metrics['epoch']:.2f}: train {train_loss:.3f} val {val_loss:.3f} "
                f"(ppl {metrics['val_perplexity']:.1f}), {tokens_per_s:,.0f} tok/s"
                + (f"\n  {config.sample_prompt}{metrics['sample']!r}" if "sample" in metrics else "")
            )
        if config.report_to:
            accelerator.log({k: v for k, v in metrics.items() if k != "sample"}, step=self.progress.step)
        self.last_metrics = metrics
        self.progress.step_losses = []
        self.interval.restart(self.progress.tokens_seen)
        return metrics

    def training_args(self) -> dict:
        """The settings of the run as training_args.json records them."""
        training_args = self.config.to_dict()
        training_args["extra"] = {**training_args["extra"], **self.launch, "total_steps": self.total_steps}
        return training_args

    def save(self):
        """Checkpoint this step once its weights are known to give a finite loss: the next step's forward pass, or
        the final evaluation, writes it (`write_pending_checkpoint`). Until then nothing changes the weights, the
        optimizer or the schedule; what does change (progress, RNG states, metrics) is captured here."""
        training_args = self.training_args()
        files = {
            "training_args.json": json.dumps(training_args, indent=2, default=str),
            "metrics.json": json.dumps(self.last_metrics, indent=2),
            PROVENANCE_FILE: json.dumps(self.provenance.to_dict(), indent=2),
        }
        self.pending_checkpoint = (copy.deepcopy(self.progress), rng_states(), files)

    def write_pending_checkpoint(self):
        if self.pending_checkpoint is None:
            return
        self.interval.pause()
        progress, rng_state, files = self.pending_checkpoint
        self.last_good_checkpoint = save_checkpoint(self.accelerator, self.model, self.tokenizer, self.optimizer,
                                                    progress, rng_state, self.out_dir, files)
        if self.accelerator.is_main_process:
            prune_checkpoints(self.out_dir, self.config.keep_last)
        self.last_saved_step, self.pending_checkpoint = progress.step, None
        self.interval.resume()

    def resume_if_asked(self):
        candidates = resolve_resume(self.config.resume, self.out_dir)
        if not candidates:
            if self.accelerator.is_main_process:
                self.log_path.unlink(missing_ok=True)  # a fresh run starts a fresh log
            return
        checkpoint, self.progress, rng = self.load_newest_intact(candidates)
        refuse_changed_settings(checkpoint, self.training_args())
        self.last_saved_step, self.last_good_checkpoint = self.progress.step, checkpoint
        if self.progress.batches_in_epoch >= len(self.train_loader):  # saved at the end of an epoch
            self.progress.epoch += 1
            self.progress.batches_in_epoch = 0
        if self.progress.batches_in_epoch == 0:
            restore_rng_states(rng)  # no data iterator of this epoch was started before the checkpoint
        else:
            self.pending_rng = rng
        if self.accelerator.is_main_process and self.log_path.is_file():
            # A killed run may have logged past its last checkpoint: keep what the resumed run will not redo.
            rows = [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]
            kept = [row for row in rows if row["step"] <= self.progress.step]
            self.log_path.write_text("".join(json.dumps(row) + "\n" for row in kept))
            self.last_metrics = kept[-1] if kept else {}
        self.accelerator.wait_for_everyone()

    def load_newest_intact(self, candidates: list[Path]) -> tuple[Path, Progress, dict]:
        """Restore the first checkpoint of `candidates` whose files are intact, saying which ones it skipped; return
        it with its Progress and this process's RNG states."""
        skipped = []
        for checkpoint in candidates:
            try:
                progress, rng = load_training_state(checkpoint, self.accelerator, self.model, self.optimizer)
            except UnreadableCheckpointError as error:
                skipped.append(error)
                continue
            if skipped and self.accelerator.is_main_process:
                reasons = "; ".join(map(str, skipped))
                print(f"resuming from {checkpoint}, the newest intact checkpoint; skipped: {reasons}", file=sys.stderr)
            return checkpoint, progress, rng
        if len(skipped) == 1:
            raise UnreadableCheckpointError(f"cannot resume: {skipped[0]} Or start afresh, without resuming.")
        reasons = "; ".join(map(str, skipped))
        raise UnreadableCheckpointError(
            f"cannot resume: no checkpoint in {self.out_dir} is intact ({reasons}). Restore one, or start afresh, "
            "without resuming."
        )


class Interval:
    """Throughput between two evaluations, not counting the time spent evaluating or saving."""

    def __init__(self, tokens_seen: int):
        self.last_tokens_per_s = 0.0
        self.restart(tokens_seen)

    def restart(self, tokens_seen: int):
        self.start_tokens, self.last_tokens = tokens_seen, tokens_seen
        self.elapsed = 0.0
        self.started = time.perf_counter()

    def pause(self):
        if self.started is not None:
            self.elapsed += time.perf_counter() - self.started
            self.started = None

    def resume(self):
        self.started = time.perf_counter()

    def record(self, tokens_seen: int):
        now = time.perf_counter()
        step_time = now - self.started if self.started is not None else 0.0
        self.last_tokens_per_s = (tokens_seen - self.last_tokens) / step_time if step_time > 0 else 0.0
        self.elapsed += step_time
        self.started = now
        self.last_tokens = tokens_seen

    def tokens_per_s(self) -> float:
        return (self.last_tokens - self.start_tokens) / self.elapsed if self.elapsed > 0 else 0.0


def mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def set_generation_defaults(model, tokenizer, config: TrainConfig) -> None:
    """The sampling settings of the run become the checkpoint's generation defaults."""
    model.generation_config.update(
        do_sample=True,
        top_k=config.sample_top_k,
        temperature=config.sample_temperature,
        max_new_tokens=config.sample_max_new_tokens,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
    )


def trackable(settings: dict) -> dict:
    """Settings as the flat primitive values trackers accept."""
    return {k: v if isinstance(v, (int, float, str, bool)) else json.dumps(v, default=str) for k, v in settings.items()}
