"""Wall time of the README's main job: `taskdistill study run configs/quickstart.yaml` end to end.

Runs the command in a fresh study folder and records its wall time and CPU time (user + system, all
threads; on a machine shared with other jobs the wall time is inflated, the CPU time much less), then
reads the store: steps per kind and their seconds,
observation rows, and whether the report files exist. The cache home must already hold the pulled
SmolLM2 teacher (``taskdistill models pull smollm2-135m-instruct``) unless --include-pull; every other
cache (traces, evaluation results, importance) starts empty, so nothing is reused.

    python benchmarks/bench_quickstart.py [--home DIR] [--dir DIR] [--spec configs/quickstart.yaml]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(REPO / "configs" / "quickstart.yaml"))
    parser.add_argument("--dir", default=None, help="study folder (default: a fresh temporary folder)")
    parser.add_argument("--home", default=str(REPO / ".test-home"), help="cache home holding the pulled teacher")
    args = parser.parse_args()

    from taskdistill.models import builtin

    home = Path(tempfile.mkdtemp(prefix="bench-home-"))
    teacher = Path(args.home) / "models" / "smollm2-135m-instruct"
    if (teacher / builtin.MARKER).is_file():  # reuse the converted teacher, nothing else
        (home / "models").mkdir()
        os.symlink(teacher, home / "models" / "smollm2-135m-instruct")
    folder = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="bench-quickstart-")) / "quickstart"
    if folder.exists():
        shutil.rmtree(folder)
    env = dict(os.environ, TASKDISTILL_HOME=str(home))
    cmd = [sys.executable, "-c", "from taskdistill.cli import main; main()", "study", "run", args.spec,
           "--dir", str(folder)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, check=False)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # CPU seconds of the study process (all threads)
    if proc.returncode != 0:
        sys.exit(f"quickstart failed with exit code {proc.returncode}")

    from taskdistill.study.store import open_store
    from taskdistill.study.views import KINDS

    store = open_store(folder)
    study = store.study()["name"]
    steps = store.steps(study)
    per_kind: dict[str, list[float]] = {}
    for row in steps.values():
        per_kind.setdefault(row["kind"], []).append(row["seconds"] or 0.0)
    summary = {
        "wall_s": round(wall, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "cpu_count": os.cpu_count(),
        "load_average_1m_at_end": os.getloadavg()[0],
        "steps": {k: {"n": len(per_kind[k]), "seconds": round(sum(per_kind[k]), 1)} for k in KINDS if k in per_kind},
        "statuses": sorted({r["status"] for r in steps.values()}),
        "observations": len(store.observations()),
        "runs": len(store.runs()),
        "report": {name: (folder / name).is_file() for name in ("report.html", "report.md", "results.json")},
        "folder": str(folder),
    }
    store.close()
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
