"""How long the read commands take to start: ``autotune --help`` and ``best --json``.

Both used to import torch, transformers and ONNX Runtime. Each command runs ``--runs`` times
in fresh processes, alternating between this checkout and, with ``--before DIR``, another
one (a ``git worktree`` of an older commit), so both are timed in the same conditions. A
tiny 3-trial study is made first, in a temporary folder, for ``best`` to read.

    python benchmarks/cli_startup.py --before ../autotune-old
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
COMMANDS = {"autotune --help": ["--help"], "autotune best tiny --json": ["best", "tiny", "--json"]}


MAKE_STUDY = """
import sys
from pathlib import Path
import autotune
from tests.helpers import make_dataset, make_tiny_teacher, spec_text
folder = Path(sys.argv[1])
teacher = make_tiny_teacher(folder / "teacher")
data = make_dataset(folder / "data")
spec = folder / "tiny.toml"
spec.write_text(spec_text(data, teacher, search='sampler = "random"\\nn_trials = 3'))
autotune.run_study(spec, f"sqlite:///{folder / 'tiny.db'}")
"""


def make_study(folder: Path) -> str:
    """A 3-trial study of a tiny random BERT, made in a child process: this one must stay
    small, since its children start with its peak RSS on the books."""
    env = dict(os.environ, PYTHONPATH=str(HERE))
    subprocess.run(
        [sys.executable, "-c", MAKE_STUDY, str(folder)], env=env, check=True, capture_output=True
    )
    return f"sqlite:///{folder / 'tiny.db'}"


def timed(source: Path, args: list[str], env: dict[str, str]) -> tuple[float, float, float, bool]:
    """(wall seconds, CPU seconds, peak RSS MB, whether torch was imported) of one fresh
    process. CPU seconds barely move when other work shares the cores; wall seconds do."""
    command = [sys.executable, "-X", "importtime", "-m", "autotune", *args]
    with tempfile.TemporaryFile("w+") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            cwd=env["AUTOTUNE_BENCH_CWD"],
            env=dict(env, PYTHONPATH=str(source)),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        # wait4, not wait: it also returns the child's own peak RSS.
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        stderr = log.read()
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed in {source}:\n{stderr[-2000:]}")
    # importtime lines end with "|  <indent>module"
    torch = any(line.rsplit("|", 1)[-1].strip() == "torch" for line in stderr.splitlines())
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, torch


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", type=Path, help="another checkout to time alongside")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--results", default="benchmarks/results/cli_startup.json")
    args = parser.parse_args()
    sources = {"after": HERE, **({"before": args.before.resolve()} if args.before else {})}
    with tempfile.TemporaryDirectory() as tmp:
        url = make_study(Path(tmp))
        env = dict(os.environ, AUTOTUNE_STORAGE=url, AUTOTUNE_BENCH_CWD=tmp)
        samples: dict[str, dict[str, list]] = {}
        for _ in range(args.runs):
            for label, command in COMMANDS.items():
                for name, source in sources.items():
                    key = f"{label} | {name}"
                    row = samples.setdefault(key, {"s": [], "cpu": [], "rss": [], "t": []})
                    seconds, cpu, rss, torch = timed(source, command, env)
                    row["s"].append(seconds)
                    row["cpu"].append(cpu)
                    row["rss"].append(rss)
                    row["t"].append(torch)
    from autotune.hardware import fingerprint

    machine = fingerprint(1)
    rows = {
        key: {
            "median_s": statistics.median(v["s"]),
            "median_cpu_s": statistics.median(v["cpu"]),
            "peak_rss_mb": statistics.median(v["rss"]),
            "imports_torch": any(v["t"]),
            "runs": len(v["s"]),
        }
        for key, v in samples.items()
    }
    load = os.getloadavg()[0]
    Path(args.results).write_text(
        json.dumps({"machine": machine, "load_1min": load, "rows": rows}, indent=1)
    )
    print(f"machine {machine['cpu']} ({', '.join(machine['isa'])}), fingerprint {machine['id']}")
    print(f"1-minute load average at the end: {load:.1f} on {os.cpu_count()} cores\n")
    print("| command | checkout | median wall s | median CPU s | peak RSS MB | imports torch |")
    print("|---|---|---|---|---|---|")
    for key, row in rows.items():
        label, name = key.split(" | ")
        print(
            f"| `{label}` | {name} | {row['median_s']:.2f} | {row['median_cpu_s']:.2f} "
            f"| {row['peak_rss_mb']:.0f} "
            f"| {'yes' if row['imports_torch'] else 'no'} |"
        )


if __name__ == "__main__":
    main()
