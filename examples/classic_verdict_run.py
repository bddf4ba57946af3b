"""The course's pretraining run, reproduced: GPT-2 124M-config (12 layers, 768 wide, 12 heads) with a context of
256, trained from scratch on the-verdict for 10 epochs with AdamW (lr 4e-4, weight decay 0.1), batch 2.

As in the course the model has no query/key/value bias and its output head is not tied to the token embedding
(163M parameters), dropout is 0.1, the learning rate is constant and gradients are not clipped; losses are
measured every 5 steps on 5 batches. The course reported train loss 0.39-0.57 and validation loss 6.37-6.45
after 10 epochs: the model memorises the story and does not generalise.

    python examples/classic_verdict_run.py [--out runs/classic] [--mixed-precision bf16]   # 90 steps
"""

import argparse
import json

from gpt2_scratch.training import TrainConfig
from gpt2_scratch.training.pretrain import pretrain


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="runs/classic")
    parser.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
    parser.add_argument("--mixed-precision", choices=["no", "bf16", "fp16"], default="no",
                        help="bf16 autocast is about 1.7x faster on a recent CPU (the course trained in fp32)")
    parser.add_argument("--eval-every", type=int, default=5, help="steps between evaluations (the course: 5)")
    args = parser.parse_args()

    config = TrainConfig(
        out_dir=args.out,
        epochs=10,
        learning_rate=4e-4,
        weight_decay=0.1,
        warmup_steps=0,
        min_lr_ratio=1.0,  # constant learning rate, as in the course
        grad_clip=None,
        batch_size=2,
        eval_every=args.eval_every,
        eval_batches=5,
        save_every=30,
        seed=123,
        resume=args.resume,
        mixed_precision=args.mixed_precision,
        sample_prompt="Every effort moves you",
        sample_max_new_tokens=25,
        sample_top_k=25,
        sample_temperature=1.4,
    )
    course_model = dict(n_positions=256, qkv_bias=False, tie_word_embeddings=False)
    result = pretrain(config, preset="small", model_overrides=course_model, max_length=256, stride=256, train_ratio=0.9)
    print(json.dumps({k: v for k, v in result.items() if k != "sample"}, indent=2))
    print(f"sample: {config.sample_prompt}{result.get('sample', '')}")


if __name__ == "__main__":
    main()
