"""Checkpoints: complete transformers checkpoint folders plus the state that makes a resumed run exact.

A checkpoint `out_dir/checkpoint-<step>/` holds
- config.json, generation_config.json, model.safetensors: the model, loadable with AutoModelForCausalLM;
- the tokenizer files (tokenizer.json, tokenizer_config.json, ...);
- training_args.json: the TrainConfig and facts about the run; metrics.json: the last evaluation;
  provenance.json: what the model is and where it came from, which its model card reads;
- optimizer.pt, trainer_state.json (step, epoch, data position, losses since the last evaluation),
  rng_state_<rank>.pt: the training state.
It is written into a hidden temporary folder and renamed into place, so a killed run never leaves half of one.
The learning-rate schedule is not stored: it is a function of the settings and the step, so a resumed run follows
its own settings.
Accelerate's save_state/load_state, its checkpoint pruning and its seedable sampler were measured against this
and left out (unsafe loads, a silently skipped RNG file, naming that does not fit; docs/performance.md, "Kept
hand-written after measuring the maintained library").
"""

from __future__ import annotations

import json
import random
import shutil
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from accelerate.utils import broadcast_object_list, gather_object

from ..conversion.containers import read_json
from ..conversion.containers.torch_pickle import load_torch_pickle
from ..conversion.pretrained import CheckpointMismatchError, read_weights_for
from ..hub_cards.records import checkpoint_folders
from ..resources import write_atomically
from ..staging import staged_folder

# Settings that decide which batch comes next: a resumed run must keep them, or it would skip the wrong batches.
DATA_POSITION_SETTINGS = ("batch_size", "grad_accum_steps", "seed")


@dataclass
class Progress:
    """Where a run stands: optimizer steps taken, the epoch and how many of its batches are used, tokens seen, and
    the training losses of the steps since the last evaluation (the next one logs their mean as step_loss)."""

    step: int = 0
    epoch: int = 0
    batches_in_epoch: int = 0
    tokens_seen: int = 0
    step_losses: list[float] = field(default_factory=list)


def latest_checkpoint(out_dir: str | Path) -> Path | None:
    found = checkpoint_folders(out_dir)
    return found[-1] if found else None


def resolve_resume(resume: bool | str, out_dir: str | Path) -> list[Path]:
    """The checkpoints a run may resume from, in the order to try them: none for a fresh run, every checkpoint of
    out_dir, newest first, for True (an unreadable one is skipped), else the path given."""
    if resume is False or resume is None:
        return []
    if resume is True or resume == "latest":
        found = checkpoint_folders(out_dir)[::-1]
        if not found:
            raise FileNotFoundError(f"resume was asked for, but {out_dir} holds no checkpoint-<step> folder yet.")
        return found
    path = Path(resume)
    if not (path / "trainer_state.json").is_file():
        raise FileNotFoundError(f"{path} is not a training checkpoint (it has no trainer_state.json).")
    return [path]


def save_checkpoint(accelerator, model, tokenizer, optimizer, progress: Progress, rng_state: dict, out_dir,
                    files: dict) -> Path:
    """Write checkpoint-<step> atomically on every process's behalf and return its path. `rng_state` is this
    process's `rng_states()` at that step; `files` maps extra file names (training_args.json, metrics.json,
    provenance.json) to their text."""
    final = Path(out_dir) / f"checkpoint-{progress.step}"
    # The main process stages the folder (a re-run of the same step replaces it); every process writes into it.
    with (staged_folder(final, replace=True) if accelerator.is_main_process else nullcontext()) as staging:
        staging = broadcast_object_list([staging])[0]
        state_dict = accelerator.get_state_dict(model)  # gathers shards under FSDP; every process must call it
        accelerator.unwrap_model(model).save_pretrained(
            staging, state_dict=state_dict, is_main_process=accelerator.is_main_process,
            save_function=accelerator.save,
        )
        if is_sharded(accelerator):  # each process its own shard of the moments
            torch.save(local_shards(optimizer.state_dict()), staging / f"optimizer_{accelerator.process_index}.pt")
        elif accelerator.is_main_process:
            torch.save(optimizer.state_dict(), staging / "optimizer.pt")
        torch.save(rng_state, staging / f"rng_state_{accelerator.process_index}.pt")
        if accelerator.is_main_process:
            tokenizer.save_pretrained(staging)
            (staging / "trainer_state.json").write_text(json.dumps(asdict(progress), indent=2))
            for name, text in files.items():
                (staging / name).write_text(text)
        accelerator.wait_for_everyone()
    accelerator.wait_for_everyone()
    return final


def prune_checkpoints(out_dir: str | Path, keep_last: int) -> None:
    for old in checkpoint_folders(out_dir)[:-keep_last]:
        shutil.rmtree(old)


def refuse_changed_settings(checkpoint: Path, training_args: dict) -> None:
    """Raise a ValueError if this run's `training_args` (as training_args.json holds them) change a setting that
    decides which batch comes next: DATA_POSITION_SETTINGS, the number of processes, or the data's windows.
    Every other setting may change on resume and is followed from there on."""
    path = checkpoint / "training_args.json"
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path} ({error}); resume from an intact checkpoint.") from error
    pairs = [(name, saved.get(name), training_args[name]) for name in DATA_POSITION_SETTINGS]
    saved_extra, extra = saved.get("extra", {}), training_args["extra"]
    pairs.append(("processes", saved_extra.get("num_processes"), extra["num_processes"]))
    # The corpus's path may move; its windows may not.
    windows = [(f"data {key}", value, extra.get("data", {}).get(key))
               for key, value in saved_extra.get("data", {}).items() if key != "source"]
    changed = [(name, old, new) for name, old, new in pairs + windows if old is not None and old != new]
    if changed:
        was = ", ".join(f"{name}={old}" for name, old, _ in changed)
        now = ", ".join(f"{name}={new}" for name, _, new in changed)
        raise ValueError(
            f"{checkpoint} was trained with {was}; this run asks for {now}. These settings decide which batch comes "
            f"next, so a resumed run keeps them: resume with {was}, or start a new run in another output folder."
        )


class UnreadableCheckpointError(ValueError):
    """A checkpoint file is missing, truncated or corrupt; an older checkpoint may still be intact."""


def load_training_state(checkpoint: Path, accelerator, model, optimizer) -> tuple[Progress, dict]:
    """Restore weights and optimizer state from `checkpoint`; return its Progress and this process's RNG states (for
    `restore_rng_states`, which the loop calls at the right moment). The optimizer keeps this run's hyperparameters
    (learning rate, weight decay, ...): only its moments and step counts come from the checkpoint. Every file is
    read before anything is restored, so a checkpoint found unreadable (UnreadableCheckpointError, on every
    process) changes nothing."""
    unwrapped = accelerator.unwrap_model(model)
    weights, saved_optimizer, progress, rng = read_training_state(checkpoint, accelerator, unwrapped)
    # strict=False: read_weights_for has refused weights that are not exactly the model's; a tied head is not stored.
    if is_sharded(accelerator):  # every process holds the whole file; each keeps its shard of it
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

        set_model_state_dict(model, weights, options=StateDictOptions(full_state_dict=True, strict=False))
        saved_optimizer = as_shards_of(saved_optimizer, optimizer)
    else:
        unwrapped.load_state_dict(weights, strict=False)
    for group, now in zip(saved_optimizer["param_groups"], optimizer.state_dict()["param_groups"]):
        group.update({key: value for key, value in now.items() if key != "params"})  # this run's lr, decay, ...
    optimizer.load_state_dict(saved_optimizer)
    return progress, rng


def read_training_state(checkpoint: Path, accelerator, model) -> tuple[dict, dict, Progress, dict]:
    """(weights, optimizer state, Progress, this process's RNG states) read from `checkpoint`'s files, the weights
    refused unless they are exactly `model`'s (CheckpointMismatchError). When any process finds a file unreadable,
    every process raises UnreadableCheckpointError, so that all of them go on to the same older checkpoint."""
    rng_file = checkpoint / f"rng_state_{accelerator.process_index}.pt"
    if not rng_file.is_file():
        raise FileNotFoundError(
            f"{rng_file} is missing: the checkpoint was written by fewer processes than now run. Resume with the "
            "same number of processes to continue exactly."
        )
    optimizer_name = f"optimizer_{accelerator.process_index}.pt" if is_sharded(accelerator) else "optimizer.pt"
    optimizer_file = checkpoint / optimizer_name
    problem = None
    try:
        weights = read_weights_for(model, checkpoint)
        optimizer_state = load_torch_pickle(existing(optimizer_file))
        progress = read_trainer_state(existing(checkpoint / "trainer_state.json"))
        rng = load_torch_pickle(rng_file)
    except CheckpointMismatchError:
        raise  # the same on every process, and no older checkpoint of this run fits better
    except (ValueError, FileNotFoundError) as error:
        problem = str(error)
    problems = [found for found in gather_object([problem]) if found]  # every process's, in every process
    if problems:
        raise UnreadableCheckpointError(problems[0])
    return weights, optimizer_state, progress, rng


def is_sharded(accelerator) -> bool:
    return accelerator.distributed_type.name == "FSDP"


def local_shards(optimizer_state: dict) -> dict:
    """An FSDP optimizer's state with each DTensor replaced by this process's part of it, a plain tensor that loads
    with weights_only=True; "placements" records how each was laid out (a shard's dimension, or -1: replicated)."""
    from torch.distributed.tensor import DTensor, Shard

    state, placements = {}, {}
    for index, values in optimizer_state["state"].items():
        state[index] = {key: value.to_local() if isinstance(value, DTensor) else value for key, value in values.items()}
        placements[index] = {key: [p.dim if isinstance(p, Shard) else -1 for p in value.placements]
                             for key, value in values.items() if isinstance(value, DTensor)}
    return {**optimizer_state, "state": state, "placements": placements}


def as_shards_of(optimizer_state: dict, optimizer) -> dict:
    """`local_shards`'s output made DTensors again, on the device mesh of `optimizer`'s parameters."""
    from torch.distributed.tensor import DTensor, Replicate, Shard

    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]

    def distributed(value, parameter, layout):
        placements = [Shard(dim) if dim >= 0 else Replicate() for dim in layout]
        if not any(dim >= 0 for dim in layout):
            return DTensor.from_local(value, parameter.device_mesh, placements)
        # A moment sharded as its parameter: the global shape is the parameter's (shards may be uneven).
        return DTensor.from_local(value, parameter.device_mesh, placements, shape=parameter.size(),
                                  stride=parameter.stride())

    state = {}
    for index, values in optimizer_state["state"].items():
        layouts = optimizer_state["placements"].get(index, {})
        state[index] = {key: distributed(value, parameters[index], layouts[key]) if key in layouts else value
                        for key, value in values.items()}
    return {key: value for key, value in optimizer_state.items() if key != "placements"} | {"state": state}


def existing(path: Path) -> Path:
    """`path`, which must be a file: a checkpoint folder lacking one of its files is damaged."""
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing.")
    return path


def read_trainer_state(path: Path) -> Progress:
    """trainer_state.json: the Progress. A "scheduler" entry, written by earlier versions, is ignored: the schedule
    follows the resumed run's settings."""
    state = read_json(path)
    try:
        state.pop("scheduler", None)
        return Progress(**state)
    except (AttributeError, TypeError):
        raise ValueError(f"{path} does not hold a training state (step, epoch, tokens seen, ...).") from None


def rng_states() -> dict:
    """Python's, NumPy's and torch's (CPU and CUDA) random states, in types that load with weights_only=True."""
    kind, keys, position, has_gauss, cached_gauss = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "position": position, "has_gauss": has_gauss,
                  "cached_gaussian": cached_gauss},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng_states(states: dict) -> None:
    random.setstate(states["python"])
    numpy_state = states["numpy"]
    np.random.set_state(
        ("MT19937", numpy_state["keys"].numpy().astype(np.uint32), numpy_state["position"],
         numpy_state["has_gauss"], numpy_state["cached_gaussian"])
    )
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def write_json(path: str | Path, payload: dict) -> None:
    write_atomically(path, json.dumps(payload, indent=2) + "\n")
