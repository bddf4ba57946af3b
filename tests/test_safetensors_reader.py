"""Our safetensors reader (safetensors' safe_open behind one clear error line) against headers that lie about where
a tensor's bytes are: every one is refused, with one line naming the file, and honest files read to the library's
tensors."""

import json
import struct

import pytest
import torch
from safetensors import SafetensorError, safe_open

from oracles import random_gpt2

from gpt2_scratch.cli import main
from gpt2_scratch.conversion.containers.safetensors_stream import SafetensorsFile

F32 = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
NEXT_F32 = {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]}

# name: (header, bytes of data); each header lies in one way.
LYING_FILES = {
    # The file: the 256 bytes before the data, which are the header's own.
    "negative offset": ({"__metadata__": {"pad": "x" * 300}, "a": {**F32, "shape": [64], "data_offsets": [-256, 0]}},
                        0),
    "overlapping tensors": ({"a": F32, "b": {**NEXT_F32, "data_offsets": [4, 12]}}, 16),
    "the same bytes twice": ({"a": F32, "b": F32}, 16),
    "a gap between tensors": ({"a": F32, "b": {**NEXT_F32, "data_offsets": [12, 20]}}, 20),
    "a gap before the first": ({"a": {**F32, "data_offsets": [8, 16]}}, 16),
    "bytes after the last": ({"a": F32}, 12),
    "past the end of the file": ({"a": F32, "b": NEXT_F32}, 12),
    "end before begin": ({"a": F32, "b": {**NEXT_F32, "data_offsets": [8, 0]}}, 16),
    "shape larger than its bytes": ({"a": {**F32, "shape": [3]}}, 8),
    "dtype wider than its bytes": ({"a": {**F32, "dtype": "F64"}}, 8),
    "unknown dtype": ({"a": {**F32, "dtype": "F24"}}, 8),
    "negative shape": ({"a": {**F32, "shape": [-2]}}, 8),
    "float offsets": ({"a": {**F32, "data_offsets": [0.0, 8.0]}}, 8),
    "boolean shape": ({"a": {"dtype": "U8", "shape": [True], "data_offsets": [0, 1]}}, 1),
    "three offsets": ({"a": {**F32, "data_offsets": [0, 8, 8]}}, 8),
    "offset beyond 64 bits": ({"a": {**F32, "data_offsets": [0, 2**64 + 8]}}, 8),
    "no shape": ({"a": {"dtype": "F32", "data_offsets": [0, 8]}}, 8),
    "metadata not strings": ({"__metadata__": {"format": 1}, "a": F32}, 8),
    "metadata not a dict": ({"__metadata__": [], "a": F32}, 8),
    "a list, not an object": ([F32], 8),
}


def write_file(path, header, data_bytes: int, header_bytes: bytes | None = None):
    raw = header_bytes if header_bytes is not None else json.dumps(header).encode()
    data = torch.arange(data_bytes, dtype=torch.uint8).numpy().tobytes()
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def library_reads(path) -> dict | None:
    """The tensors the safetensors library reads from `path`, or None when it refuses the file."""
    try:
        with safe_open(path, framework="pt") as opened:
            return {name: opened.get_tensor(name) for name in opened.keys()}
    except SafetensorError:
        return None


def ours_reads(path) -> dict | None:
    try:
        opened = SafetensorsFile(path)
    except ValueError as error:
        assert str(path) in str(error) and "\n" not in str(error)  # one line, naming the file
        return None
    return {name: opened.read(name) for name in opened.names()}


@pytest.mark.parametrize("case", LYING_FILES)
def test_a_lying_header_is_refused_as_the_safetensors_library_refuses_it(tmp_path, case):
    header, data_bytes = LYING_FILES[case]
    path = write_file(tmp_path / "lying.safetensors", header, data_bytes)
    assert library_reads(path) is None
    assert ours_reads(path) is None


@pytest.mark.parametrize(
    "raw",
    [b'{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, NaN]}}', b"\xff\xfe{}", '{}'.encode("utf-16")],
    ids=["NaN", "not UTF-8", "UTF-16"],
)
def test_headers_that_are_not_strict_utf8_json_are_refused(tmp_path, raw):
    path = write_file(tmp_path / "odd.safetensors", None, 8, header_bytes=raw)
    assert library_reads(path) is None
    assert ours_reads(path) is None


def test_a_header_larger_than_safetensors_allows_is_refused_unread(tmp_path):
    path = tmp_path / "huge-header.safetensors"
    with open(path, "wb") as handle:  # a sparse file: the claimed 100 MB header is never written
        handle.write(struct.pack("<Q", 100_000_001) + b"{")
        handle.truncate(8 + 100_000_001 + 8)
    assert library_reads(path) is None
    with pytest.raises(ValueError, match="header too large"):
        SafetensorsFile(path)


def test_honest_files_read_the_same_tensors_as_the_library(tmp_path):
    header = {"__metadata__": {"format": "pt"}, "b": NEXT_F32, "a": F32, "empty": {**F32, "shape": [0, 3],
              "data_offsets": [16, 16]}, "scalar": {"dtype": "I16", "shape": [], "data_offsets": [16, 18]}}
    path = write_file(tmp_path / "honest.safetensors", header, 18)
    expected = library_reads(path)
    assert expected is not None and expected.keys() == {"a", "b", "empty", "scalar"}
    ours = ours_reads(path)
    assert ours.keys() == expected.keys()
    for name in expected:
        assert ours[name].dtype == expected[name].dtype and torch.equal(ours[name], expected[name])


def test_a_dtype_the_library_reads_but_no_layout_takes_is_refused_in_one_line(tmp_path):
    path = write_file(tmp_path / "fp8.safetensors", {"a": {"dtype": "F8_E4M3", "shape": [8], "data_offsets": [0, 8]}}, 8)
    assert library_reads(path) is not None
    with pytest.raises(ValueError, match="tensor 'a' has dtype F8_E4M3, which this reader does not take"):
        SafetensorsFile(path)


def test_convert_refuses_a_checkpoint_whose_header_points_a_tensor_at_the_header(tmp_path, capsys):
    source = tmp_path / "source"
    random_gpt2(3).save_pretrained(source)
    weights = source / "model.safetensors"
    raw = weights.read_bytes()
    length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + length])
    begin, end = header["transformer.wpe.weight"]["data_offsets"]
    header["transformer.wpe.weight"]["data_offsets"] = [begin - 256, end - 256]  # the bytes before it, or the header's
    text = json.dumps(header).encode()
    weights.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length :])
    assert library_reads(weights) is None
    capsys.readouterr()

    assert main(["convert", str(source), str(tmp_path / "out")]) == 2
    error = capsys.readouterr().err
    assert str(weights) in error and "corrupt" in error and len(error.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"]  # nothing written, not even a partial folder
