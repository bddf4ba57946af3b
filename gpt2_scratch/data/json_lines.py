"""JSON Lines files (one JSON value a line), read with the line each value came from."""

from __future__ import annotations

import json
from pathlib import Path


def numbered_json_lines(path: str | Path) -> list[tuple[int, object]]:
    """(line number, value) for every non-blank line of `path`. A line that is not JSON is a ValueError that names
    the line (callers add the file's name)."""
    values = []
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if line.strip():
                try:
                    values.append((number, json.loads(line)))
                except json.JSONDecodeError as error:
                    raise ValueError(f"line {number} is not valid JSON ({error.msg})") from error
    return values
