"""Pretrain a small GPT-2 from scratch on raw text, step by step with the library's pieces.

    python examples/pretrain.py                                  # the-verdict, tiny model, a few minutes on a CPU
    python examples/pretrain.py --data my_corpus/ --epochs 3     # any text files or folders
    accelerate launch --multi_gpu --num_processes 2 examples/pretrain.py   # the same code on 2 GPUs (or CPU processes)

`gpt2-scratch pretrain` does the same with every option; this script shows what happens inside.
"""

import argparse

from gpt2_scratch import ScratchGPT2Config, ScratchGPT2ForCausalLM
from gpt2_scratch.data import tokenize_corpus, window_loaders
from gpt2_scratch.resources import fetch
from gpt2_scratch.tokenization import gpt2_tokenizer
from gpt2_scratch.training import TrainConfig, plot_attention, plot_temperature, train
from gpt2_scratch.training.loop import make_accelerator


def main():
    parser = argparse.ArgumentParser(description="Pretrain a small GPT-2 from scratch.")
    parser.add_argument("--data", nargs="+", help="text files or folders (default: the-verdict)")
    parser.add_argument("--out", default="runs/example")
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()

    config = TrainConfig(out_dir=args.out, epochs=args.epochs, learning_rate=2e-3, warmup_steps=10,
                         batch_size=8, eval_every=20, eval_batches=4)
    accelerator = make_accelerator(config)  # one CPU, one GPU, or every process `accelerate launch` started

    # 1. Raw text -> one array of token ids, cached on disk and memory-mapped.
    tokenizer = gpt2_tokenizer()
    with accelerator.main_process_first():
        tokens = tokenize_corpus(args.data or fetch("the-verdict"), tokenizer)

    # 2. Windows of 128 tokens, 90% of the text for training and 10% for validation.
    train_loader, val_loader = window_loaders(tokens, max_length=128, batch_size=config.batch_size, seed=config.seed)

    # 3. A fresh model: 4 blocks, 128 wide, GPT-2's vocabulary.
    model = ScratchGPT2ForCausalLM(ScratchGPT2Config.from_preset("tiny", n_layer=4, n_embd=128))

    # 4. Train: losses, perplexity, throughput and a sample every 20 steps; a checkpoint at the end.
    result = train(model, tokenizer, train_loader, val_loader, config, accelerator)

    # 5. The figures: loss.png is written by train(); these two look inside the model.
    if accelerator.is_main_process:
        plot_temperature(model, tokenizer, config.sample_prompt, f"{args.out}/temperature.png")
        plot_attention(model, tokenizer, config.sample_prompt, f"{args.out}/attention.png")
        print(f"val loss {result['val_loss']:.2f}; checkpoint {result['checkpoint']}; plots in {args.out}/")


if __name__ == "__main__":
    main()
