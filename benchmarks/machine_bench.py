"""The command line shared by the per-machine benchmarks (``ort_variants``, ``timing_methods``):
results in ``benchmarks/results/<name>-<fingerprint>.json``; ``--table`` prints every stored
machine's."""

from __future__ import annotations

import argparse
import json
import logging
import warnings
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def main(
    doc: str,
    name: str,
    run: Callable[[argparse.Namespace], None],
    markdown: Callable[[dict], str],
    *flags: str,
) -> None:
    """Parse the shared options (and ``flags``, booleans), then run or print the tables."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--spec", type=Path, default=Path("studies/sst2-minilm.toml"))
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--models-dir", type=Path)
    parser.add_argument("--table", action="store_true")
    for flag in flags:
        parser.add_argument(flag, action="store_true")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    warnings.simplefilter("ignore")
    if args.table:
        for path in sorted(RESULTS.glob(f"{name}-*.json")):
            print(markdown(json.loads(path.read_text())), "\n")
        return
    run(args)
