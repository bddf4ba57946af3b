"""Publishing a checkpoint to the Hugging Face Hub: a clean staging folder, uploaded in one commit.

The staging folder is written from scratch for every push, so nothing stale from earlier saves (old shards, a
pytorch_model.bin, scratch files) reaches the Hub; files of the remote repository that the new staging folder no
longer has are deleted in the same commit. The checkpoint directory itself is only read.
"""

from __future__ import annotations

import contextlib
import shutil
import sys
import tempfile
from pathlib import Path

from huggingface_hub import CommitInfo, HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
from transformers import GenerationConfig
from transformers.utils import GENERATION_CONFIG_NAME
from transformers.utils.hub import convert_file_size_to_int

from .. import modeling
from ..conversion.pretrained import check_fits
from ..conversion.sources import check_readable
from ..conversion.containers.safetensors_stream import write_sharded
from ..conversion.containers.safetensors_stream import SafetensorsSource
from ..modeling import configuration_scratch_gpt2, modeling_scratch_gpt2
from ..modeling.configuration_scratch_gpt2 import auto_map
from ..progress import progress_bar, progress_bars
from ..provenance import HUB_ID
from ..staging import temporary_folder
from .card import build_card
from .records import model_folder, read_records, weight_files

try:  # the HTTP client under huggingface_hub: httpx2 since huggingface_hub 2, httpx before
    from httpx2 import HTTPError as TransportError
except ImportError:
    from httpx import HTTPError as TransportError

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
                   "vocab.json", "merges.txt", "chat_template.jinja")
INDEX_FILE = "model.safetensors.index.json"


def stage(checkpoint_dir: str | Path, staging_dir: str | Path, repo_id: str | None = None,
          max_shard_size: str | int = "1GB", progress: bool = True) -> list[Path]:
    """Write into the empty (or new) folder `staging_dir` everything the Hub repository should hold, and return
    the files written: safetensors weights (sharded above `max_shard_size`), config.json with an `auto_map` for
    AutoConfig / AutoModel / AutoModelForCausalLM / AutoModelForSequenceClassification, the two modeling code files,
    the generation config (causal LMs), the tokenizer, README.md (the model card), the plots and the run's records.

    The weights are checked against the model from their headers (CheckpointMismatchError when they do not fit it)
    and copied as they are, never loaded; only a checkpoint whose shards do not suit `max_shard_size` is re-sharded,
    one tensor at a time."""
    checkpoint_dir, staging_dir = model_folder(checkpoint_dir), Path(staging_dir)
    records = read_records(checkpoint_dir)  # fails early, with a clear message, on a folder that is no checkpoint
    if staging_dir.exists() and any(staging_dir.iterdir()):
        raise ValueError(f"the staging folder {staging_dir} is not empty: give a new or empty folder")
    model_class = _model_class(records.config)
    config = model_class.config_class.from_pretrained(checkpoint_dir)
    weights = SafetensorsSource(weight_files(checkpoint_dir))  # reads and checks every header
    check_fits(model_class, config, {name: weights.shape(name) for name in weights.names()}, str(checkpoint_dir))
    staging_dir.mkdir(parents=True, exist_ok=True)

    _stage_weights(checkpoint_dir, staging_dir, weights, convert_file_size_to_int(max_shard_size), progress)
    config.auto_map = auto_map()
    config.save_pretrained(staging_dir)
    for code in (configuration_scratch_gpt2.__file__, modeling_scratch_gpt2.__file__):
        shutil.copy2(code, staging_dir)
    if model_class is modeling.ScratchGPT2ForCausalLM:
        _stage_generation_config(checkpoint_dir, staging_dir, config)
    _stage_tokenizer(checkpoint_dir, staging_dir, vocab_size=config.vocab_size)
    for path in [*records.plots, *(checkpoint_dir / name for name in records.record_files)]:
        shutil.copy2(path, staging_dir / path.name)
    build_card(checkpoint_dir, repo_id).save(staging_dir / "README.md")
    return sorted(p for p in staging_dir.rglob("*") if p.is_file())


def publish(checkpoint_dir: str | Path, repo_id: str, *, private: bool | None = None, revision: str | None = None,
            create_pr: bool = False, token: str | None = None, commit_message: str | None = None,
            max_shard_size: str | int = "1GB", endpoint: str | None = None, progress: bool = True) -> CommitInfo:
    """Push the checkpoint in `checkpoint_dir` (or a run folder's final model: see model_folder) to the Hub
    repository `repo_id` ("user/name") in one commit.

    The repository is created if needed (`private` applies only then). `revision` names the branch to commit to
    (created from main if missing); `create_pr=True` opens a pull request instead of committing to it. The token
    comes from `token`, else HF_TOKEN or `hf auth login`; the endpoint from `endpoint`, else HF_ENDPOINT.
    The token and the right to write to the repository's namespace are checked before anything is staged.
    `progress` shows bars for staging and uploading. Returns huggingface_hub's CommitInfo (commit id, URL, pull
    request URL). The checkpoint is never modified.
    """
    if not HUB_ID.fullmatch(repo_id):
        raise ValueError(f"repo_id {repo_id!r} must look like 'user/name' (or 'organization/name')")
    token = token or get_token()
    if not token:
        raise RuntimeError(
            "no Hugging Face token: log in with `hf auth login` or set HF_TOKEN to a token with write access "
            f"(https://huggingface.co/settings/tokens). Nothing was uploaded; {checkpoint_dir} is unchanged."
        )
    checkpoint_dir = model_folder(checkpoint_dir)
    check_readable(checkpoint_dir)  # headers and config: milliseconds; a corrupt file is named before the Hub is asked
    api = HfApi(endpoint=endpoint, token=token)
    with _hub_errors(api, repo_id, checkpoint_dir):
        _check_write_access(api, repo_id)
    # Staged in the temporary directory ($TMPDIR), not beside the checkpoint, which may be read-only (the Hub's
    # cache); temporary_folder also removes what a killed push left there, and names a full disk in one line.
    with temporary_folder(Path(tempfile.gettempdir()) / "gpt2-scratch-push") as staging_dir:
        staged = stage(checkpoint_dir, staging_dir, repo_id=repo_id, max_shard_size=max_shard_size, progress=progress)
        size = sum(path.stat().st_size for path in staged)
        if progress:
            print(f"uploading {len(staged)} files ({size / 1e6:,.1f} MB) to {api.endpoint}/{repo_id}", file=sys.stderr)
        with _hub_errors(api, repo_id, checkpoint_dir), progress_bars(progress):
            return _commit_folder(api, staging_dir, repo_id, private=private, revision=revision,
                                  create_pr=create_pr, commit_message=commit_message)


@contextlib.contextmanager
def _hub_errors(api: HfApi, repo_id: str, checkpoint_dir):
    """A refused or failed exchange with the Hub as one RuntimeError that says nothing changed locally."""
    try:
        yield
    except (HfHubHTTPError, TransportError, OfflineModeIsEnabled) as error:
        raise RuntimeError(
            f"the push to {api.endpoint}/{repo_id} failed: {error}\n"
            f"Nothing was changed locally: {checkpoint_dir} is as it was; fix the cause and push again."
        ) from error


def _check_write_access(api: HfApi, repo_id: str) -> None:
    """Refuse, before any work, a token the Hub rejects (whoami answers 401), a read-only token, and a namespace that
    is neither the token's user nor one of its organizations."""
    identity = api.whoami()
    role = identity.get("auth", {}).get("accessToken", {}).get("role")
    if role == "read":
        raise RuntimeError(
            f"the token of {identity.get('name')} can only read: create one with write access at "
            "https://huggingface.co/settings/tokens and pass it in HF_TOKEN (or `hf auth login`). Nothing was uploaded."
        )
    namespace = repo_id.split("/")[0]
    namespaces = [identity.get("name"), *(org.get("name") for org in identity.get("orgs", []))]
    if namespace not in namespaces:
        raise RuntimeError(
            f"the token belongs to {identity.get('name')}, who cannot write to {namespace}/ (it can write to "
            f"{', '.join(name for name in namespaces if name)}): push to one of those, or log in as {namespace}. "
            "Nothing was uploaded."
        )


def _stage_weights(checkpoint_dir: Path, staging_dir: Path, weights: SafetensorsSource, max_shard_bytes: int,
                   progress: bool) -> None:
    """The checkpoint's safetensors files (and index) copied as they are when each fits in `max_shard_bytes` and
    they are sharded only because they must be; otherwise written again, one tensor at a time, in shards of at most
    `max_shard_bytes`."""
    files = weight_files(checkpoint_dir)
    sizes = [path.stat().st_size for path in files]
    keep = max(sizes) <= max_shard_bytes and (len(files) == 1 or sum(sizes) > max_shard_bytes)
    with progress_bar(total=sum(sizes), unit="B", unit_scale=True, desc="staging weights", disable=not progress) as bar:
        if keep:
            for path in [*files, *([checkpoint_dir / INDEX_FILE] if len(files) > 1 else [])]:
                shutil.copyfile(path, staging_dir / path.name)
                bar.update(path.stat().st_size if path.name != INDEX_FILE else 0)
            return
        dtypes = {weights.dtype(name) for name in weights.names()}
        if len(dtypes) > 1:
            raise ValueError(
                f"{checkpoint_dir} mixes tensor dtypes ({', '.join(sorted(map(str, dtypes)))}), so its shards cannot "
                f"be re-cut: pass a --max-shard-size of at least {max(sizes)} bytes to upload them as they are"
            )
        items = [(name, weights.shape(name)) for name in weights.names()]
        tensors = ((name, weights.read(name)) for name, _ in items)
        write_sharded(staging_dir, items, dtypes.pop(), _counting_bytes(tensors, bar), max_shard_bytes)


def _counting_bytes(tensors, bar):
    """The (name, tensor) pairs of `tensors`, each counted on the progress bar in bytes as it is written."""
    for name, tensor in tensors:
        bar.update(tensor.numel() * tensor.element_size())
        yield name, tensor


def _stage_generation_config(checkpoint_dir: Path, staging_dir: Path, config) -> None:
    """The checkpoint's generation_config.json, or the one save_pretrained writes for a causal LM without one."""
    if (checkpoint_dir / GENERATION_CONFIG_NAME).is_file():
        GenerationConfig.from_pretrained(checkpoint_dir).save_pretrained(staging_dir)
    else:
        GenerationConfig.from_model_config(config).save_pretrained(staging_dir)


def _commit_folder(api: HfApi, staging_dir: Path, repo_id: str, *, private: bool | None, revision: str | None,
                   create_pr: bool, commit_message: str | None) -> CommitInfo:
    """One commit that makes the repository hold the staging folder: its files uploaded (unchanged ones are not sent
    again), every other file of the repository deleted (huggingface_hub keeps .gitattributes)."""
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision not in (None, "main") and not create_pr:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    return api.upload_folder(
        repo_id=repo_id,
        folder_path=staging_dir,
        commit_message=commit_message or "Upload model, code, tokenizer and model card with gpt2-scratch",
        revision=revision,
        create_pr=create_pr,
        delete_patterns="*",
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
