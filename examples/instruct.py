"""Instruction fine-tuning of GPT-2, as in part 3 of the course, on the Hugging Face stack.

    python examples/instruct.py --model tiny --out-dir runs/instruct-tiny --max-steps 20 --max-new-tokens 32
    accelerate launch examples/instruct.py --model openai-community/gpt2-medium --out-dir runs/instruct-355m
    accelerate launch --multi_gpu --num_processes 2 examples/instruct.py --model tiny --out-dir runs/ddp --lora
    accelerate launch --config_file examples/accelerate/ddp.yaml examples/instruct.py --model tiny --out-dir runs/ddp

`--multi_gpu` (or a config file) is what makes accelerate start several processes; on a machine without GPUs they
train on the CPU over gloo. Without it accelerate starts one process whatever --num_processes says, and the run
says so at its start.

It loads Alpaca-style records, splits them 85/10/5 in file order, fine-tunes (every weight, or LoRA adapters with
--lora) on the shared training loop, writes the final model to OUT_DIR/model and the test split's greedy
responses to OUT_DIR/instruction-data-with-response.json. `--resume` continues from the last checkpoint. Every
option: `python examples/instruct.py --help`; what each step does: docs/instruction-tuning.md.
"""

import argparse
import sys

from gpt2_scratch.cli import instruct

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    instruct.add_arguments(parser)
    sys.exit(instruct.run(parser.parse_args()))
