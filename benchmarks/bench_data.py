"""Task-data costs next to the plain library calls they wrap.

    TASKDISTILL_DATA_DIR=../shared/data python benchmarks/bench_data.py [--repeats 3] [--n 20000]

1. Loading the real tweet-topic train CSV (16,990 rows) with ``load_task_data`` (UTF-8 check, column
   detection, label-name mapping, per-row checks, Example objects) vs ``pandas.read_csv`` (parse only).
2. ``make_split`` (SHA-256-keyed stratified split) + ``nested_subsets`` vs scikit-learn's
   ``train_test_split(stratify=...)`` on ``--n`` synthetic headlines.
3. The synthetic generator's speed (headlines per second).
Each timing is the best of ``--repeats`` runs. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path


def best(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()

    import pandas as pd
    from sklearn.model_selection import train_test_split

    from taskdistill.data import synthetic
    from taskdistill.data.load import load_task_data
    from taskdistill.data.splits import make_split, nested_subsets

    root = Path(os.environ.get("TASKDISTILL_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
    csv = root / "twitter_financial_news_topic" / "topic_train.csv"
    ours_load, data = best(lambda: load_task_data(csv), args.repeats)
    pandas_load, frame = best(lambda: pd.read_csv(csv), args.repeats)
    assert len(data) == len(frame) == 16990

    gen_time, synth = best(lambda: synthetic.generate(args.n, seed=0), args.repeats)
    test_size = args.n // 10
    sizes = [100, 1000, args.n // 2]
    ours_split, _ = best(lambda: nested_subsets(make_split(synth, test_size).train_pool, sizes), args.repeats)
    labels = [e.label for e in synth.examples]
    sk_split, _ = best(lambda: train_test_split(synth.examples, test_size=test_size, stratify=labels,
                                                random_state=0), args.repeats)
    print(json.dumps({
        "machine": f"{platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}",
        "load_tweet_topic_s": {"ours": round(ours_load, 3), "pandas_read_csv": round(pandas_load, 3),
                               "ratio_ours_over_pandas": round(ours_load / pandas_load, 2)},
        "split_s": {"n": args.n, "ours_split_plus_subsets": round(ours_split, 3),
                    "sklearn_train_test_split": round(sk_split, 3), "ratio_ours_over_sklearn": round(ours_split / sk_split, 2)},
        "synthetic_headlines_per_s": round(args.n / gen_time),
    }, indent=2))


if __name__ == "__main__":
    main()
