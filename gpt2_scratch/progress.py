"""Progress bars: the package's own, and one switch that hides them with those of the libraries it drives.

The CLI's `--no-progress` runs the command inside `progress_bars(False)`; library code makes its bars with
`progress_bar` so that the switch reaches them without a flag passed down every call.
"""

from __future__ import annotations

import contextlib

from tqdm.auto import tqdm

_hidden = False  # set only by progress_bars


def progress_bar(*args, disable: bool = False, **kwargs) -> tqdm:
    """A tqdm bar (same arguments), not shown when `disable` or inside `progress_bars(False)`."""
    return tqdm(*args, disable=disable or _hidden, **kwargs)


def progress_bars_shown() -> bool:
    """False inside `progress_bars(False)`."""
    return not _hidden


@contextlib.contextmanager
def progress_bars(shown: bool = True):
    """Within: unless `shown`, no progress bar at all: this package's (`progress_bar`), transformers' (loading
    weights, writing model shards), huggingface_hub's (downloads, uploads) and datasets' (loading, map), through
    each library's own switch; afterwards as they were. Shown ones are left to the libraries, so that their
    environment variables (HF_HUB_DISABLE_PROGRESS_BARS=1, ...) still hide them."""
    global _hidden
    if shown:
        yield
        return
    import datasets
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars
    from transformers.utils import logging as transformers_logging

    # transformers' switch also flips huggingface_hub's, so huggingface_hub's state is read first
    were = (_hidden, are_progress_bars_disabled(), transformers_logging.is_progress_bar_enabled(),
            datasets.is_progress_bar_enabled())
    _hidden = True
    disable_progress_bars()
    transformers_logging.disable_progress_bar()
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        _hidden, hub_disabled, transformers_enabled, datasets_enabled = were
        if transformers_enabled:
            transformers_logging.enable_progress_bar()
        (disable_progress_bars if hub_disabled else enable_progress_bars)()
        if datasets_enabled:
            datasets.enable_progress_bars()
