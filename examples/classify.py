"""Fine-tune GPT-2 into a spam classifier with transformers' Trainer: the whole path, step by step.

    python examples/classify.py CHECKPOINT [OUT]

CHECKPOINT is a ScratchGPT2 checkpoint folder: OpenAI's 124M weights converted with `gpt2-scratch convert`, or
the output of our pretraining. `gpt2-scratch train-classifier` does the same in one call (plus metrics and plots).
"""

import sys

from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, pipeline

import gpt2_scratch  # noqa: F401  (registers ScratchGPT2 with the Auto classes that pipeline() uses)
from gpt2_scratch.classification import (
    ClassificationMetrics,
    apply_freezing,
    classification_model,
    label_names_of,
    load_labelled_texts,
    tokenize_splits,
)
from gpt2_scratch.tokenization import load_tokenizer

checkpoint = sys.argv[1]
out = sys.argv[2] if len(sys.argv) > 2 else "spam-classifier"

# 1. Data: the course's balanced SMS spam splits (1045 / 149 / 300 messages), as token ids.
tokenizer = load_tokenizer(checkpoint)  # the checkpoint's own tokenizer, else GPT-2's; <|endoftext|> pads
splits = load_labelled_texts("sms-spam")  # or a CSV/JSON file, a folder of split files, a datasets name
labels = label_names_of(splits)  # ["ham", "spam"]

# 2. Model: the checkpoint with a fresh 2-class head on the last token; train only the last block, the final
#    LayerNorm and the head, as the course does.
model = classification_model(checkpoint, labels, tokenizer, dropout=0.0)
model = apply_freezing(model, "all-but-last-block")
encoded = tokenize_splits(splits, tokenizer, max_length=model.config.n_positions)  # long texts keep their start

# 3. Training: AdamW at a constant 5e-5, weight decay 0.1, batches of 8 padded to their longest message, 5 epochs.
trainer = Trainer(
    model=model,
    args=TrainingArguments(
        output_dir=out,
        num_train_epochs=5,
        per_device_train_batch_size=8,
        learning_rate=5e-5,
        weight_decay=0.1,
        lr_scheduler_type="constant",
        eval_strategy="epoch",
        save_strategy="no",
        report_to="none",
    ),
    train_dataset=encoded["train"],
    eval_dataset=encoded["validation"],
    processing_class=tokenizer,
    data_collator=DataCollatorWithPadding(tokenizer),
    compute_metrics=ClassificationMetrics(len(labels)),  # accuracy, precision, recall, F1, confusion matrix
)
before = trainer.evaluate(encoded["test"], metric_key_prefix="test")
trainer.train()
after = trainer.evaluate(encoded["test"], metric_key_prefix="test")
print(f"test accuracy: {before['test_accuracy']:.2%} before, {after['test_accuracy']:.2%} after fine-tuning")
print("test confusion matrix (rows: true ham/spam, columns: predicted):", after["test_confusion_matrix"])

# 4. Save, then classify with the standard pipeline.
trainer.save_model(out)  # the model and its tokenizer
classifier = pipeline("text-classification", model=out)
print(classifier(["You are a winner! Claim your free prize: reply WIN now", "Are we still on for dinner tonight?"]))
