"""``load_task_data``: formats, column detection, label names, bad input, the real tweet-topic set."""

from __future__ import annotations

import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from taskdistill.data.files import write_jsonl
from taskdistill.data.load import load_task_data, read_label_names
from taskdistill.errors import TaskDistillError

ROWS = [
    {"headline": "Acme beats Q3 estimates", "event_type": "Earnings Beat", "uid": "a1"},
    {"headline": "Globex cuts 2025 outlook", "event_type": "Guidance Cut", "uid": "a2"},
    {"headline": "Initech misses Q2 estimates", "event_type": "Earnings Miss", "uid": "a3"},
    {"headline": "Hooli beats Q1 estimates, raises outlook", "event_type": "Earnings Beat", "uid": "a4"},
]


def write(path, rows, fmt):
    if fmt == "csv":
        cols = list(rows[0])
        lines = [",".join(cols)] + [",".join(json.dumps(str(r[c])) for c in cols) for r in rows]
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    elif fmt == "json":
        path.write_text(json.dumps(rows), encoding="utf-8")
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "json", "parquet"])
def test_every_format_loads_with_detected_columns(tmp_path, fmt):
    data = load_task_data(write(tmp_path / f"d.{fmt}", ROWS, fmt))
    assert [e.text for e in data.examples] == [r["headline"] for r in ROWS]
    assert [e.label for e in data.examples] == [r["event_type"] for r in ROWS]
    assert [e.id for e in data.examples] == ["a1", "a2", "a3", "a4"]
    assert data.labels == ["Earnings Beat", "Earnings Miss", "Guidance Cut"]
    assert data.meta["text_col"] == "headline" and data.meta["label_col"] == "event_type"


def test_json_dict_of_columns_and_generated_ids(tmp_path):
    path = tmp_path / "cols.json"
    path.write_text(json.dumps({"Sentence": ["x one", "y two"], "Class": ["A", "B"]}), encoding="utf-8")
    data = load_task_data(path)
    assert [(e.id, e.text, e.label) for e in data.examples] == [("cols-1", "x one", "A"), ("cols-2", "y two", "B")]


def test_fuzzy_column_names_and_overrides(tmp_path):
    rows = [{"news_headline": "a b", "event_category": "X", "note": "n1"},
            {"news_headline": "c d", "event_category": "Y", "note": "n2"}]
    path = write(tmp_path / "f.jsonl", rows, "jsonl")
    data = load_task_data(path)
    assert data.meta["text_col"] == "news_headline" and data.meta["label_col"] == "event_category"
    assert "other_label_columns" not in data.meta
    over = load_task_data(path, text_col="note", label_col="news_headline")
    assert over.meta["other_label_columns"] == "event_category"
    assert [e.text for e in over.examples] == ["n1", "n2"] and over.labels == ["a b", "c d"]


def test_cot_column_is_read(tmp_path):
    rows = [{"text": "a", "label": "X", "rationale": "because a"}, {"text": "b", "label": "Y", "rationale": ""}]
    data = load_task_data(write(tmp_path / "c.jsonl", rows, "jsonl"))
    assert [e.cot for e in data.examples] == ["because a", None]


def test_integer_labels_map_through_label_names(tmp_path):
    rows = [{"text": "a", "label": 1}, {"text": "b", "label": 0}, {"text": "c", "label": 1}]
    path = write(tmp_path / "int.jsonl", rows, "jsonl")
    assert [e.label for e in load_task_data(path, label_names=["Zero", "One"]).examples] == ["One", "Zero", "One"]
    names = tmp_path / "names.json"
    names.write_text(json.dumps({"0": "Zero", "1": "One", "2": "Two"}), encoding="utf-8")
    data = load_task_data(path, label_names=str(names))
    assert data.labels == ["One", "Two", "Zero"]  # the declared taxonomy, sorted
    assert load_task_data(path, label_names="Zero,One").examples[0].label == "One"
    with pytest.raises(TaskDistillError, match=r"integer ids \(0\.\.1\) with no names; pass --label-names"):
        load_task_data(path)
    with pytest.raises(TaskDistillError, match=r"line 1: label '1' is not in the label names"):
        load_task_data(path, label_names=["Zero"])


def test_sibling_labels_json_is_used(tmp_path):
    write(tmp_path / "t.csv", [{"text": "a", "label": 0}, {"text": "b", "label": 1}], "csv")
    (tmp_path / "labels.json").write_text(json.dumps(["Alpha", "Beta"]), encoding="utf-8")
    data = load_task_data(tmp_path / "t.csv")
    assert [e.label for e in data.examples] == ["Alpha", "Beta"]
    assert data.meta["label_names_from"].endswith("labels.json")


def test_jsonl_round_trip_keeps_unicode_line_separators(tmp_path):
    from taskdistill.data.schema import Example, TaskData

    data = TaskData([Example("Acme\u2028beats\x85 Q3 — café", "A", "x1", cot="why\r\nso"),
                     Example("b", "B", "x2")], ["A", "B"], "u")
    write_jsonl(tmp_path / "u.jsonl", data)
    assert load_task_data(tmp_path / "u.jsonl").examples == data.examples


def test_written_subset_keeps_full_taxonomy_through_labels_json(tmp_path):
    full = load_task_data(write(tmp_path / "src.jsonl", ROWS, "jsonl"))
    out = tmp_path / "split"
    write_jsonl(out / "train_1.jsonl", full.subset(full.examples[:1]))
    (out / "labels.json").write_text(json.dumps(full.labels), encoding="utf-8")
    again = load_task_data(out / "train_1.jsonl")
    assert again.labels == full.labels and again.examples == full.examples[:1]


def test_read_label_names_rejects_duplicates_and_missing_file(tmp_path):
    assert read_label_names(["a", "b"]) == {"0": "a", "1": "b"}
    with pytest.raises(TaskDistillError, match="duplicates"):
        read_label_names(["a", "a"])
    with pytest.raises(TaskDistillError, match="not found"):
        read_label_names(str(tmp_path / "nope.json"))


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda p: p / "missing.csv", r"data file not found: .*missing\.csv"),
        (lambda p: p / "synthetik", r"data source '.*synthetik' is not a file; pass a \.csv"),
        (lambda p: _bytes(p / "empty.csv", b""), r"data file is empty: .*empty\.csv"),
        (lambda p: _bytes(p / "header.csv", b"text,label\n"), r"has no rows: .*header\.csv"),
        (lambda p: _bytes(p / "x.xlsx", b"abc"), r"unknown data format '\.xlsx'"),
        (lambda p: _bytes(p / "bad.csv", b"text,label\nok,A\ncaf\xe9,B\n"), r"bad\.csv line 3: byte 0xe9 is not valid UTF-8"),
        (lambda p: _bytes(p / "cols.csv", b"body2,kind\na,B\n"),
         r"no text column found in cols\.csv; columns found: body2, kind\. Pass --text-col NAME"),
        (lambda p: _bytes(p / "nolab.csv", b"text,kind\na,B\n"), r"no label column found .*columns found: text, kind"),
        (lambda p: _bytes(p / "et.csv", b"text,label\na,A\n  ,B\n"), r"et\.csv line 3: empty text in column 'text'"),
        (lambda p: _bytes(p / "el.jsonl", b'{"text": "a", "label": null}\n'), r"el\.jsonl line 1: empty label"),
        (lambda p: _bytes(p / "dup.csv", b"id,text,label\n7,a,A\n7,b,B\n"),
         r"dup\.csv line 3: id '7' duplicates dup\.csv line 2; make ids unique"),
        (lambda p: _bytes(p / "bad.jsonl", b'{"text": "a", "label": "A"}\n{"text": \n'), r"bad\.jsonl line 2: invalid JSON"),
        (lambda p: _bytes(p / "ml.jsonl", b'{"text": "a", "label": ["A", "B"]}\n'), r"holds a list, not one label"),
        (lambda p: _bytes(p / "bad.parquet", b"not parquet"), r"not a readable parquet file"),
        (lambda p: _bytes(p / "wide.csv", b"text,label\na,A,extra\n"), r"wide\.csv line 2: more fields"),
    ],
)
def test_bad_input_raises_one_clear_line(tmp_path, setup, message):
    with pytest.raises(TaskDistillError, match=message) as info:
        load_task_data(setup(tmp_path))
    assert "\n" not in str(info.value)


def test_unknown_column_override_lists_columns(tmp_path):
    path = write(tmp_path / "d.jsonl", ROWS, "jsonl")
    with pytest.raises(TaskDistillError, match="text and label are both column 'headline'"):
        load_task_data(path, label_col="headline")
    with pytest.raises(TaskDistillError, match=r"--label-col 'kind' is not a column .*headline, event_type, uid"):
        load_task_data(path, label_col="kind")


def test_synthetic_source_spec():
    data = load_task_data("synthetic:n=70,seed=3,granularity=coarse")
    assert len(data) == 70 and len(data.labels) == 13 and data.meta["seed"] == 3
    assert len(load_task_data("synthetic")) == 2000
    with pytest.raises(TaskDistillError, match="bad synthetic option 'm=3'"):
        load_task_data("synthetic:m=3")
    with pytest.raises(TaskDistillError, match="do not apply to synthetic"):
        load_task_data("synthetic", text_col="x")


def test_hf_source_uses_datasets_and_class_label_names(monkeypatch):
    import datasets

    features = datasets.Features({"headline": datasets.Value("string"),
                                  "category": datasets.ClassLabel(names=["Earnings", "Guidance"])})
    fake = datasets.Dataset.from_dict({"headline": ["a b", "c d"], "category": [1, 0]}, features=features)
    calls = []
    monkeypatch.setattr(datasets, "load_dataset", lambda name, split: calls.append((name, split)) or fake)
    data = load_task_data("finheadlinemix")
    assert calls == [("nvidia/FinHeadlineMix", "train")]
    assert [e.label for e in data.examples] == ["Guidance", "Earnings"] and data.labels == ["Earnings", "Guidance"]
    load_task_data("hf:someone/set:validation")
    assert calls[-1] == ("someone/set", "validation")


def test_hf_unreachable_suggests_local_copy(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # fail fast instead of retrying the network
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    import datasets

    def offline(name, split):
        raise ConnectionError(f"Couldn't reach '{name}' on the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(TaskDistillError, match=r"could not reach 'nvidia/FinHeadlineMix' .*pass the local"):
        load_task_data("hf:nvidia/FinHeadlineMix")
    with pytest.raises(TaskDistillError, match="bad hub dataset"):
        load_task_data("hf:justaname")


def test_real_tweet_topic_set_loads(data_dir):
    folder = data_dir / "twitter_financial_news_topic"
    names = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    valid = load_task_data(folder / "topic_valid.csv", label_names=folder / "labels.json")
    assert len(valid) == 4117 and valid.labels == sorted(names.values()) and len(valid.labels) == 20
    train = load_task_data(folder / "topic_train.csv")  # labels.json beside the file is used automatically
    counts = Counter(e.label for e in train.examples)
    # counts from the folder's README: 0:255 ... 10:69 11:44 ... 18:2118
    assert len(train) == 16990
    assert counts["Analyst Update"] == 255 and counts["IPO"] == 44 and counts["Stock Commentary"] == 2118
    assert train.examples[1].text.startswith("Buy Las Vegas Sands as travel to Singapore builds")


def _bytes(path, data: bytes):
    path.write_bytes(data)
    return path
