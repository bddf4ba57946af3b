"""Instruction fine-tuning of GPT-2, as in part 3 of the course, with the library's two settings records.

    python examples/instruct.py                                   # tiny random model, 20 steps: a smoke run
    python examples/instruct.py --model openai-community/gpt2-medium --out-dir runs/instruct-355m --max-steps 0
    accelerate launch --multi_gpu --num_processes 2 examples/instruct.py --lora
    accelerate launch --config_file examples/accelerate/ddp.yaml examples/instruct.py

With every option of the command line, on two processes:

    accelerate launch --multi_gpu --num_processes 2 -m gpt2_scratch.cli instruct --model tiny --out-dir runs/ddp --lora

`--multi_gpu` (or a config file) is what makes accelerate start several processes; on a machine without GPUs they
train on the CPU over gloo. Without it accelerate starts one process whatever --num_processes says, and the run
says so at its start.

It loads Alpaca-style records, splits them 85/10/5 in file order, fine-tunes (every weight, or LoRA adapters with
--lora) on the shared training loop with the course's settings (TRAINING_DEFAULTS), writes the final model to
OUT_DIR/model and the test split's greedy responses to OUT_DIR/instruction-data-with-response.json. Every setting
is an option of `gpt2-scratch instruct` (which also runs under `accelerate launch -m gpt2_scratch.cli instruct`);
what each step does: docs/instruction-tuning.md.
"""

import argparse
import json

from gpt2_scratch.instruct.finetune import TRAINING_DEFAULTS, InstructConfig, finetune
from gpt2_scratch.training import TrainConfig


def main():
    parser = argparse.ArgumentParser(description="Instruction fine-tuning of GPT-2.")
    parser.add_argument("--model", default="tiny", help="a preset (random weights) or a checkpoint")
    parser.add_argument("--data", help="JSON/JSONL records (default: the course's instruction-data.json)")
    parser.add_argument("--out-dir", default="runs/instruct-example")
    parser.add_argument("--max-steps", type=int, default=20, help="0: the course's two epochs")
    parser.add_argument("--lora", action="store_true", help="train LoRA adapters instead of every weight")
    args = parser.parse_args()

    config = InstructConfig(model=args.model, data=args.data, lora=args.lora, max_new_tokens=32, num_responses=4)
    training = TrainConfig(out_dir=args.out_dir, **{**TRAINING_DEFAULTS, "max_steps": args.max_steps or None})
    metrics = finetune(config, training)  # every process trains; only the main one writes
    print(json.dumps(metrics, indent=2))


if __name__ == "__main__":
    main()
