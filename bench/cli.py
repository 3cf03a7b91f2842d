"""CLI start-up time: `hoard --help`, `hoard list` on an embedded node, and `import hoard`.

    python bench/cli.py [--runs 15] [--hoard PATH]

Each command runs RUNS times as a fresh process (warm page cache: one unmeasured run first),
interleaved with the same-run reference, `python -c pass` (the interpreter's own start-up), so
a busy machine slows both alike. `hoard list` runs against an embedded node on a temporary data
dir holding one small dataset (the key file and the store exist, as on any node after its first
command). `import hoard` is `python -c "import hoard"`.

Prints JSON: per command, the min/median/max wall seconds, the goal (0.3 s), whether the
median meets it, and the median minus the reference median (what hoard itself costs).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

GOAL_S = 0.3


def _hoard_command(explicit: str | None) -> list[str]:
    if explicit:
        return [explicit]
    script = Path(sys.executable).with_name("hoard")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hoard.cli.main"]


def _wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120, check=False)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return elapsed


def _summary(times: list[float], reference: float | None) -> dict[str, object]:
    median = statistics.median(times)
    out: dict[str, object] = {"min_s": round(min(times), 4), "median_s": round(median, 4), "max_s": round(max(times), 4)}
    if reference is not None:
        out |= {"goal_s": GOAL_S, "meets_goal": median < GOAL_S, "over_reference_s": round(median - reference, 4)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--hoard", help="the hoard executable (default: the one beside this Python)")
    args = parser.parse_args()

    hoard = _hoard_command(args.hoard)
    workdir = Path(tempfile.mkdtemp(prefix="hoard-bench-cli-"))
    try:
        data_dir = workdir / "data"
        sample = workdir / "sample.txt"
        sample.write_bytes(b"hello hoard\n" * 100)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOARD_")}
        subprocess.run([*hoard, "--data-dir", str(data_dir), "upload", str(sample)], env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=120)
        commands = {
            "python -c pass": [sys.executable, "-c", "pass"],
            "import hoard": [sys.executable, "-c", "import hoard"],
            "hoard --help": [*hoard, "--help"],
            "hoard list": [*hoard, "--data-dir", str(data_dir), "list"],
        }
        for argv in commands.values():  # warm the page cache and the .pyc files
            _wall(argv, env)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):
            for name, argv in commands.items():
                times[name].append(_wall(argv, env))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    reference = statistics.median(times["python -c pass"])
    result = {
        "runs": args.runs,
        "python": sys.version.split()[0],
        "reference": {"python -c pass": _summary(times["python -c pass"], None)},
        "commands": {name: _summary(t, reference) for name, t in times.items() if name != "python -c pass"},
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
