"""Peak memory and time of converting an XL-sized (1.56B parameters, ~6.2 GB float32) transformers checkpoint.

The source checkpoint is random and written tensor by tensor (never whole in memory) as transformers' sharded
safetensors. The conversion runs in a child process, whose anonymous memory (RssAnon in /proc/PID/status) this
process samples every 2 ms, keeping the peak; the child reports its RssAnon once the package (torch,
transformers) is imported, and its VmHWM at the end for contrast (VmHWM also counts the clean pages of the
memory-mapped source files, which the kernel drops when it needs the room).

    python benchmarks/conversion_memory.py [--preset xl] [--to scratch] [--workdir DIR]

Needs about 2 x 6.2 GB of free disk for XL; everything written is deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.harness import PeakAnonMemory  # noqa: E402
from gpt2_scratch.conversion.engine import export_plan  # noqa: E402
from gpt2_scratch.conversion.hparams import DEFAULT_HPARAMS, gpt2_config  # noqa: E402
from gpt2_scratch.conversion.layouts import LAYOUTS  # noqa: E402
from gpt2_scratch.conversion.containers.safetensors_stream import write_sharded  # noqa: E402
from gpt2_scratch.modeling import PRESETS  # noqa: E402

CHILD = """
import sys, time
sys.path.insert(0, sys.argv[4])
from benchmarks.harness import status_bytes
from gpt2_scratch.conversion import convert
print(status_bytes("RssAnon"), flush=True)
start = time.perf_counter()
convert(sys.argv[1], sys.argv[2], to_layout=sys.argv[3])
print(time.perf_counter() - start, status_bytes("VmHWM"))
"""


def write_random_transformers_checkpoint(folder: Path, hparams: dict) -> int:
    """Random weights in transformers' layout, generated and written one tensor at a time; returns bytes written."""
    plan = [(item.name, item.shape) for item in export_plan(LAYOUTS["transformers"], hparams)]
    generator = torch.Generator().manual_seed(0)
    tensors = ((name, torch.randn(shape, generator=generator) * 0.02) for name, shape in plan)
    write_sharded(folder, plan, torch.float32, tensors, max_shard_bytes=2 * 1024**3)
    gpt2_config(hparams).save_pretrained(folder)
    return sum(p.stat().st_size for p in folder.glob("*.safetensors"))


def spot_check(source: Path, target: Path, block: int) -> None:
    """The last block's fused QKV weight came through: transformers' (in, out) is ours transposed."""
    from gpt2_scratch.conversion.sources import open_checkpoint

    name = f"transformer.h.{block}.attn.c_attn.weight"
    theirs, ours = open_checkpoint(source).tensors.read(name), open_checkpoint(target).tensors.read(name)
    if not torch.equal(theirs.t(), ours):
        raise SystemExit(f"conversion error: {name} differs")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="xl", choices=list(PRESETS))
    parser.add_argument("--to", default="scratch", help="layout to convert to (default: scratch)")
    parser.add_argument("--workdir", default=None, help="where to write the temporary checkpoints")
    args = parser.parse_args()

    hparams = {**DEFAULT_HPARAMS, **PRESETS[args.preset]}
    with tempfile.TemporaryDirectory(dir=args.workdir, prefix="conversion-memory-") as work:
        source, target = Path(work) / "source", Path(work) / "converted"
        source.mkdir()
        start = time.perf_counter()
        size = write_random_transformers_checkpoint(source, hparams)
        print(
            f"wrote a random {args.preset} transformers checkpoint: {size / 1e9:.2f} GB "
            f"in {time.perf_counter() - start:.0f} s"
        )

        command = [sys.executable, "-c", CHILD, str(source), str(target), args.to, str(REPO_ROOT)]
        child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        with PeakAnonMemory(child.pid) as anon:
            output, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"the conversion failed (exit status {child.returncode}); its error is printed above")
        baseline, seconds, vmhwm = output.split()[-3:]
        baseline, peak = int(baseline), anon.peak
        written = sum(p.stat().st_size for p in target.glob("*.safetensors"))
        spot_check(source, target, hparams["n_layer"] - 1)
        result = {
            "preset": args.preset,
            "checkpoint_gb": round(size / 1e9, 2),
            "converted_gb": round(written / 1e9, 2),
            "seconds": round(float(seconds), 1),
            "peak_anon_gb": round(peak / 1e9, 2),
            "anon_after_imports_gb": round(baseline / 1e9, 2),
            "peak_anon_above_imports_over_checkpoint_size": round((peak - baseline) / size, 3),
            "vmhwm_gb": round(int(vmhwm) / 1e9, 2),
        }
        print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
