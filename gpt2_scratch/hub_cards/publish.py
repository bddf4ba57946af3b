"""Publishing a checkpoint to the Hugging Face Hub: a clean staging folder, uploaded in one commit.

The staging folder is written from scratch for every push, so nothing stale from earlier saves (old shards, a
pytorch_model.bin, scratch files) reaches the Hub; files of the remote repository that the new staging folder no
longer has are deleted in the same commit. The checkpoint directory itself is only read.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, CommitOperationAdd, CommitOperationDelete, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from .. import modeling
from ..conversion.pretrained import load_pretrained
from .card import HUB_ID, build_card
from .records import read_records

try:  # the HTTP client under huggingface_hub: httpx2 since huggingface_hub 2, httpx before
    from httpx2 import HTTPError as TransportError
except ImportError:
    from httpx import HTTPError as TransportError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "chat_template.jinja")
KEPT_REMOTE_FILES = {".gitattributes"}  # written by the Hub itself; it tells git which files are LFS


def stage(checkpoint_dir: str | Path, staging_dir: str | Path, repo_id: str | None = None,
          max_shard_size: str | int = "1GB") -> list[Path]:
    """Write into the empty (or new) folder `staging_dir` everything the Hub repository should hold, and return
    the files written: safetensors weights (sharded above `max_shard_size`), config.json with an `auto_map` for
    AutoConfig / AutoModel / AutoModelForCausalLM / AutoModelForSequenceClassification, the two modeling code files,
    the generation config (causal LMs), the tokenizer, README.md (the model card), the plots and the run's records."""
    checkpoint_dir, staging_dir = Path(checkpoint_dir), Path(staging_dir)
    records = read_records(checkpoint_dir)  # fails early, with a clear message, on a folder that is no checkpoint
    if staging_dir.exists() and any(staging_dir.iterdir()):
        raise ValueError(f"the staging folder {staging_dir} is not empty: give a new or empty folder")
    staging_dir.mkdir(parents=True, exist_ok=True)

    model = load_pretrained(_model_class(records.config), checkpoint_dir, dtype="auto")
    model.save_pretrained(staging_dir, max_shard_size=max_shard_size)  # writes the auto_map and copies the code
    _stage_tokenizer(checkpoint_dir, staging_dir, vocab_size=model.config.vocab_size)
    for path in [*records.plots, *(checkpoint_dir / name for name in records.record_files)]:
        shutil.copy2(path, staging_dir / path.name)
    build_card(checkpoint_dir, repo_id).save(staging_dir / "README.md")
    return sorted(p for p in staging_dir.rglob("*") if p.is_file())


def publish(checkpoint_dir: str | Path, repo_id: str, *, private: bool | None = None, revision: str | None = None,
            create_pr: bool = False, token: str | None = None, commit_message: str | None = None,
            max_shard_size: str | int = "1GB", endpoint: str | None = None) -> CommitInfo:
    """Push the checkpoint in `checkpoint_dir` to the Hub repository `repo_id` ("user/name") in one commit.

    The repository is created if needed (`private` applies only then). `revision` names the branch to commit to
    (created from main if missing); `create_pr=True` opens a pull request instead of committing to it. The token
    comes from `token`, else HF_TOKEN or `hf auth login`; the endpoint from `endpoint`, else HF_ENDPOINT.
    Returns huggingface_hub's CommitInfo (commit id, URL, pull request URL). The checkpoint is never modified.
    """
    if not HUB_ID.fullmatch(repo_id):
        raise ValueError(f"repo_id {repo_id!r} must look like 'user/name' (or 'organization/name')")
    token = token or get_token()
    if not token:
        raise RuntimeError(
            "no Hugging Face token: log in with `hf auth login` or set HF_TOKEN to a token with write access "
            f"(https://huggingface.co/settings/tokens). Nothing was uploaded; {checkpoint_dir} is unchanged."
        )
    api = HfApi(endpoint=endpoint, token=token)
    with tempfile.TemporaryDirectory(prefix="gpt2-scratch-push-") as staging_dir:
        staged = stage(checkpoint_dir, staging_dir, repo_id=repo_id, max_shard_size=max_shard_size)
        try:
            return _commit_folder(api, Path(staging_dir), staged, repo_id, private=private, revision=revision,
                                  create_pr=create_pr, commit_message=commit_message)
        except (HfHubHTTPError, TransportError, OfflineModeIsEnabled) as error:
            raise RuntimeError(
                f"the push to {api.endpoint}/{repo_id} failed: {error}\n"
                f"Nothing was changed locally: {checkpoint_dir} is as it was; fix the cause and push again."
            ) from error


def _commit_folder(api: HfApi, staging_dir: Path, staged: list[Path], repo_id: str, *, private: bool | None,
                   revision: str | None, create_pr: bool, commit_message: str | None) -> CommitInfo:
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision not in (None, "main") and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    paths = {p.relative_to(staging_dir).as_posix(): p for p in staged}
    stale = set(api.list_repo_files(repo_id, revision=revision)) - paths.keys() - KEPT_REMOTE_FILES
    operations = [CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in paths.items()]
    operations += [CommitOperationDelete(path_in_repo=name) for name in sorted(stale)]
    return api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message or "Upload model, code, tokenizer and model card with gpt2-scratch",
        revision=revision,
        create_pr=create_pr,
    )


def _model_class(config: dict):
    """The gpt2_scratch class named by config.json's `architectures` (a classifier, a causal LM or the bare model)."""
    names = config.get("architectures") or ["ScratchGPT2ForCausalLM"]
    model_class = getattr(modeling, names[0], None)
    if model_class is None or config.get("model_type") != modeling.ScratchGPT2Config.model_type:
        raise ValueError(
            f"config.json describes {names[0]} (model_type {config.get('model_type')!r}), not a gpt2_scratch model: "
            "convert it first with `gpt2-scratch convert`"
        )
    return model_class


def _stage_tokenizer(checkpoint_dir: Path, staging_dir: Path, vocab_size: int) -> None:
    """The checkpoint's own tokenizer: its files copied as they are when transformers saved it (tokenizer.json and
    tokenizer_config.json), built from GPT-2-format vocab.json + merges.txt (as `gpt2-scratch convert` copies them);
    GPT-2's own tokenizer when the checkpoint has none, which every model here uses unless trained with another."""
    from ..tokenization import gpt2_tokenizer

    own_files = [name for name in TOKENIZER_FILES if (checkpoint_dir / name).is_file()]
    if {"tokenizer.json", "tokenizer_config.json"} <= set(own_files):
        for name in own_files:
            shutil.copy2(checkpoint_dir / name, staging_dir / name)
        from tokenizers import Tokenizer

        tokens = Tokenizer.from_file(str(checkpoint_dir / "tokenizer.json")).get_vocab_size(with_added_tokens=True)
    else:
        bpe_files = {"vocab.json", "merges.txt"} <= set(own_files)
        tokenizer = gpt2_tokenizer(checkpoint_dir if bpe_files else None)
        tokenizer.save_pretrained(staging_dir)
        tokens = len(tokenizer)
    if tokens > vocab_size:
        raise ValueError(
            f"the checkpoint's tokenizer has {tokens} tokens but the model only {vocab_size} embeddings: resize "
            "the model's embeddings with model.resize_token_embeddings(len(tokenizer)) and save it again"
        )
