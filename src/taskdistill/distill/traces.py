"""Chain-of-thought traces: a teacher writes a short rationale ending in ``[[Label]]`` for each example.

Two prompting modes, recorded with the traces (``meta["traces"]["explain_gold"]``):

* ``explain_gold=False`` (default): the teacher sees only the headline and the CoT prompt and writes
  its own reasoning and answer; a trace is kept only where that answer is the gold label (and there
  is a rationale before it), so the filter selects the teacher's correct reasoning.
* ``explain_gold=True``: the teacher is also told the gold label and asked to explain it
  (rationalisation, as in STaR). Useful where the trace writer cannot classify the task yet — e.g.
  to bootstrap the rationales a teacher correction trains on — but the filter is then nearly vacuous.
  A generation without any ``[[...]]`` is kept when its rationale names the gold label (small
  teachers often drop the brackets); the training target still ends in ``[[Label]]``.

Thinking templates (Qwen3 and alike): traces are written with thinking on (``thinking=True``); the
text inside the thinking block is the rationale (the ``<think>`` markers cut out, whitespace
collapsed) and the answer after ``</think>`` supplies the ``[[Label]]``. Such a generation runs to the
end of the answer (no ``]]`` stop: the thinking may quote the format); one whose thinking is still open
at ``max_new_tokens`` is dropped and counted as ``unfinished_thinking``.

Dropped traces are counted by reason. Generation is greedy, stopped at the closing ``]]``, on the
back-end ``backend`` resolves to (``auto | hf | vllm``, vllm_backend.py; recorded in the report):
batched HF generation with left padding, or vLLM. Results are cached under
``settings.cache_dir("traces")`` keyed by (teacher weights, data, prompt format, decoding settings).
User traces (a ``cot`` column, or a JSONL of ``{"id", "cot"}``) are accepted as-is by ``import_traces``.
"""

from __future__ import annotations

import json
from pathlib import Path

from taskdistill import settings
from taskdistill.cache import atomic_write_text, content_hash
from taskdistill.data.schema import Example, TaskData
from taskdistill.distill import vllm_backend
from taskdistill.errors import TaskDistillError
from taskdistill.models.prompts import (
    PromptFormat,
    build_prompt,
    cut_rationale,
    encode,
    opens_thinking,
    parse_label,
    split_thinking,
    thinking_switch,
)


def teacher_prompt(tokenizer, example: Example, labels: list[str], fmt: PromptFormat, explain_gold: bool,
                   thinking: bool = True) -> str:
    """The CoT prompt; with ``explain_gold`` its hint names the gold label and asks which words show it
    (worded so that the label is not handed over as a sentence to copy: measured on SmolLM2-135M, a hint
    "The correct event type is X. Explain …" was echoed back as the whole rationale)."""
    if explain_gold:
        hint = f"This headline is about: {example.label}. In one sentence, say which words in the headline show this."
        fmt = fmt.model_copy(update={"cot_hint": hint})
    return build_prompt(tokenizer, example.text, labels, fmt, cot=True, thinking=thinking)


def build_traces(
    model,
    tokenizer,
    data: TaskData,
    *,
    explain_gold: bool = False,
    max_new_tokens: int = 80,
    batch_size: int = 8,
    fmt: PromptFormat | None = None,
    backend: str = "auto",
    thinking: bool = True,
    source: str | None = None,
    tensor_parallel_size: int | None = None,
    use_cache: bool = True,
    progress=None,
) -> TaskData:
    """Generate and filter traces; returns the kept examples with ``cot`` set.

    ``meta["traces"]`` holds the report: n, kept, wrong_label, no_label, empty, unbracketed (kept
    without brackets, see above), unfinished_thinking, drop_rate, and the back-end that generated the
    texts. Without a thinking block a rationale is the text before the first ``[[``, first paragraph
    only, whitespace collapsed. ``source`` / ``tensor_parallel_size``: what vLLM loads and on how many
    GPUs (vllm_backend.choose).
    """
    from taskdistill.models.load import model_fingerprint

    fmt = fmt or PromptFormat()
    prompts = [teacher_prompt(tokenizer, ex, data.labels, fmt, explain_gold, thinking) for ex in data.examples]
    thinks = thinking_switch(tokenizer) or any(opens_thinking(p) for p in prompts)
    settings_key = {"explain_gold": explain_gold, "max_new_tokens": max_new_tokens, "decoding": "greedy",
                    "fmt": fmt.model_dump()}
    if thinks:  # a thinking template: the switch changes the prompts and the stop rule
        settings_key["thinking"] = thinking
    key = content_hash({"teacher": model_fingerprint(model), "data": data.fingerprint(), **settings_key})
    path = settings.cache_dir("traces") / f"{key}.jsonl"
    if use_cache and path.is_file():
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        generations = {r["id"]: r["generated"] for r in rows}
        used = {"name": rows[0].get("backend", "unknown") if rows else "unknown", "reason": "cached"}
    else:
        chosen = vllm_backend.choose(backend, model, purpose="traces", source=source,
                                     tensor_parallel_size=tensor_parallel_size)
        stop = None if thinking and thinks else ["]]"]
        texts = generate(model, tokenizer, prompts, max_new_tokens, batch_size, chosen, progress, stop=stop)
        generations = {ex.id: g for ex, g in zip(data.examples, texts, strict=True)}
        atomic_write_text(path, "".join(json.dumps({"id": i, "generated": g, "backend": chosen.name}) + "\n"
                                        for i, g in generations.items()))
        used = chosen.record()
    kept, counts = [], {"wrong_label": 0, "no_label": 0, "empty": 0, "unbracketed": 0, "unfinished_thinking": 0}
    for ex, prompt in zip(data.examples, prompts, strict=True):
        generated = generations[ex.id]
        thought, answer_text = split_thinking(generated, opens_thinking(prompt))
        if thought is not None and answer_text is None:
            counts["unfinished_thinking"] += 1
            continue
        if thought is not None:  # the thinking is the rationale, the answer after it gives the label
            rationale = " ".join(thought.split())
        else:
            rationale = " ".join(cut_rationale(generated).split("\n\n", 1)[0].split())
        label = parse_label(answer_text, data.labels)
        named = answer_text if thought is not None else rationale
        if label is None and explain_gold and "[[" not in answer_text and ex.label.lower() in named.lower():
            label = ex.label
            counts["unbracketed"] += 1
        if label is None:
            counts["no_label"] += 1
        elif label != ex.label:
            counts["wrong_label"] += 1
        elif not rationale:
            counts["empty"] += 1
        else:
            kept.append(Example(ex.text, ex.label, ex.id, cot=rationale))
    report = {"n": len(data), "kept": len(kept), **counts, "drop_rate": 1 - len(kept) / max(len(data), 1),
              **settings_key, "backend": used, "cache": str(path)}
    if not kept:
        unfinished = (f", {counts['unfinished_thinking']} still thinking at max_new_tokens={max_new_tokens}"
                      if counts["unfinished_thinking"] else "")
        raise TaskDistillError(
            f"no trace survived the gold-label filter ({report['no_label']} without a [[label]], "
            f"{report['wrong_label']} with a wrong one, {report['empty']} with no rationale before it{unfinished}); "
            "use a trace writer that can reason about the task (a teacher corrected with rationales: "
            "correction.rationales in a study), more max_new_tokens, explain_gold, or import traces"
        )
    out = data.subset(kept, name=f"{data.name}+traces")
    out.meta["traces"] = report
    return out


def cut_at_stop(text: str, stop: list[str] | None) -> str:
    """``text`` up to and including the first stop string (the end of a stopped generation)."""
    ends = [text.index(s) + len(s) for s in stop or () if s in text]
    return text[: min(ends)] if ends else text


def generate(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int, backend,
             progress=None, stop: list[str] | None = None):
    """Greedy completions of prompt strings on ``backend`` (a name, or what vllm_backend.choose
    resolved), each cut after its first stop string, so both back-ends end a text at the same place."""
    if isinstance(backend, str):
        backend = vllm_backend.choose(backend, model, purpose="generation")
    ids = [encode(tokenizer, p)[0] for p in prompts]
    if backend.name == "vllm":
        texts = vllm_backend.generate(backend, tokenizer, ids, max_new_tokens, stop)
    else:
        from taskdistill.models.generate import generate_texts

        texts = generate_texts(model, tokenizer, ids, max_new_tokens, batch_size, progress, stop=stop)
    return [cut_at_stop(t, stop) for t in texts]


def import_traces(data: TaskData, source: str | Path) -> TaskData:
    """Attach user traces from a JSONL of ``{"id": ..., "cot": ...}`` as-is (no filtering).

    Examples without a trace keep ``cot=None`` (the CoT formats skip them); unknown ids are an error.
    """
    path = Path(source)
    if not path.is_file():
        raise TaskDistillError(f"trace file {path} not found; give a JSONL with one {{\"id\", \"cot\"}} object per line")
    traces = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            traces[str(row["id"])] = str(row["cot"])
        except (json.JSONDecodeError, KeyError, TypeError):
            raise TaskDistillError(f"{path}:{n} is not a JSON object with 'id' and 'cot'") from None
    ids = {ex.id for ex in data.examples}
    unknown = sorted(set(traces) - ids)
    if unknown:
        raise TaskDistillError(f"{len(unknown)} trace id(s) in {path} are not in the data (first: {unknown[0]!r})")
    examples = [Example(ex.text, ex.label, ex.id, cot=traces.get(ex.id, ex.cot)) for ex in data.examples]
    if not any(ex.cot for ex in examples):
        raise TaskDistillError(f"{path} gives no non-empty trace for this data")
    out = data.subset(examples, name=f"{data.name}+traces")
    out.meta["traces"] = {"n": len(data), "kept": sum(1 for e in examples if e.cot), "source": str(path)}
    return out


def write_traces(data: TaskData, path: str | Path) -> Path:
    """Save the traces of ``data`` as JSONL ``{"id", "label", "cot"}`` (atomically)."""
    rows = [{"id": e.id, "label": e.label, "cot": e.cot} for e in data.examples if e.cot]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return Path(path)
