"""Serving a checkpoint: an OpenAI-compatible HTTP server (`serve`, `build_app`) whose requests are decoded
together by a continuous-batching scheduler (`Scheduler`), and a terminal chat (`chat`)."""

from .app import ServedModel, build_app, load_served_model, serve
from .scheduler import BatchDecoder, Scheduler, Sequence

__all__ = ["BatchDecoder", "Scheduler", "Sequence", "ServedModel", "build_app", "load_served_model", "serve"]
