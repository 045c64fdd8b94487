"""Teacher top-k log-probabilities per supervised position: an online teacher or a memory-mapped cache.

The cache holds, for every training sequence, the teacher's top-k token ids and k+1 log-probs (the
last one is the rest mass outside the top-k, see losses.py) at temperature τ, in numpy ``.npy``
shards opened with ``mmap_mode="r"``. It is keyed by a content hash of (teacher weights, the exact
token sequences and supervised positions, k, τ, vocabulary cut), so every run that trains on the
same sequences with the same teacher reuses it. The rows come from the HF teacher in memory or from
vLLM's prompt log-probs (``backend``: auto | hf | vllm, see vllm_backend.py); ``meta.json`` records
which. Layout of ``<cache>/logits/<key>/``::

    meta.json                      k, temperature, vocab, shard list, back-end
    shard-00000/index.npy          example indices (n,)
    shard-00000/offsets.npy        first position row of each example (n+1,)
    shard-00000/idx.npy            int32 token ids (P, k)
    shard-00000/logp.npy           float32 log-probs (P, k+1)
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from taskdistill import settings
from taskdistill.cache import atomic_dir, atomic_write_json, content_hash
from taskdistill.distill import losses
from taskdistill.distill.batches import Sequence, collate
from taskdistill.distill.heads import logits_chunks, supervised_hidden


@torch.no_grad()
def batch_topk(teacher, batch, k: int | None, temperature: float, vocab: int | None, chunk: int = 1024):
    """Teacher (idx (N, k), logp (N, k+1)) at the batch's supervised positions (on the teacher's last device)."""
    from taskdistill.models.runtime import model_device

    hidden = supervised_hidden(teacher, batch.to(model_device(teacher)))
    idx, logp = [], []
    for _, logits in logits_chunks(teacher, hidden, chunk, vocab):
        i, lp = losses.topk_buckets(logits, k, temperature)
        idx.append(i)
        logp.append(lp)
    return torch.cat(idx), torch.cat(logp)


class OnlineTeacher:
    """Teacher kept in memory; top-k computed for each batch (no cache)."""

    def __init__(self, teacher, k: int | None, temperature: float, vocab: int | None, chunk: int = 1024):
        self.teacher, self.k, self.temperature, self.vocab, self.chunk = teacher, k, temperature, vocab, chunk
        teacher.eval()

    def topk(self, batch):
        return batch_topk(self.teacher, batch, self.k, self.temperature, self.vocab, self.chunk)


class TeacherLogits:
    """A finished cache folder, memory-mapped; ``topk(batch)`` returns rows aligned with the batch."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.meta = json.loads((self.path / "meta.json").read_text())
        self.where: dict[int, tuple[int, int]] = {}
        self.shards = []
        for s, name in enumerate(self.meta["shards"]):
            folder = self.path / name
            arrays = {n: np.load(folder / f"{n}.npy", mmap_mode="r") for n in ("index", "offsets", "idx", "logp")}
            self.shards.append(arrays)
            for row, example in enumerate(np.asarray(arrays["index"]).tolist()):
                self.where[example] = (s, row)

    @property
    def k(self) -> int:
        return int(self.meta["k"])

    def example(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        s, row = self.where[index]
        arrays = self.shards[s]
        lo, hi = int(arrays["offsets"][row]), int(arrays["offsets"][row + 1])
        return arrays["idx"][lo:hi], arrays["logp"][lo:hi]

    def topk(self, batch):
        parts = [self.example(i) for i in batch.indices]
        idx = torch.from_numpy(np.concatenate([p[0] for p in parts]).astype(np.int64))
        logp = torch.from_numpy(np.concatenate([p[1] for p in parts]).astype(np.float32))
        if idx.shape[0] != batch.targets.shape[0]:
            raise RuntimeError("teacher cache rows do not match the batch's supervised positions")
        return idx, logp


def cache_key(teacher_fp: str, sequences: list[Sequence], k: int | None, temperature: float, vocab: int | None) -> str:
    seqs = content_hash([(s.index, s.input_ids, s.target_pos) for s in sequences], length=32)
    return content_hash({"teacher": teacher_fp, "sequences": seqs, "k": k, "tau": temperature, "vocab": vocab})


def _not_for_vllm(k: int | None, temperature: float, vocab: int | None, rows: int) -> str | None:
    """Why vLLM's prompt log-probs cannot give these rows exactly (None: they can)."""
    if temperature != 1:
        return f"vLLM's prompt log-probs are at temperature 1 only (τ = {temperature} needs the full logits)"
    if k is None:
        return "full-vocabulary targets (top_k none) are far too large for vLLM's per-token log-prob lists"
    if vocab is not None and vocab != rows:
        return f"the logits are cut to {vocab} of the teacher's {rows} columns, which vLLM cannot renormalise"
    return None


def build_cache(
    teacher,
    sequences: list[Sequence],
    *,
    k: int | None,
    temperature: float,
    vocab: int | None,
    pad_id: int,
    batch_size: int = 8,
    shard_size: int = 4096,
    teacher_fp: str | None = None,
    root: Path | None = None,
    backend: str = "auto",
    source: str | None = None,
    tensor_parallel_size: int | None = None,
) -> TeacherLogits:
    """Compute (or reuse) the teacher's top-k log-probs for ``sequences``; return the memory-mapped cache.

    ``backend``, ``source``, ``tensor_parallel_size``: as in vllm_backend.choose. vLLM gives exact rows
    for τ = 1, a top-k (not the full vocabulary) and no vocabulary cut; ``auto`` takes HF otherwise.
    """
    from taskdistill.distill import vllm_backend
    from taskdistill.distill.heads import vocab_size
    from taskdistill.models.load import model_fingerprint

    teacher_fp = teacher_fp or model_fingerprint(teacher)
    final = (root or settings.cache_dir("logits")) / cache_key(teacher_fp, sequences, k, temperature, vocab)
    if (final / "meta.json").is_file():
        return TeacherLogits(final)
    rows = vocab_size(teacher)
    chosen = vllm_backend.choose(backend, teacher, purpose="teacher top-k", source=source,
                                 tensor_parallel_size=tensor_parallel_size,
                                 unsupported=_not_for_vllm(k, temperature, vocab, rows))
    if chosen.name == "vllm":
        streamed = vllm_backend.topk_rows(chosen, sequences, min(k, rows), rows)
    teacher.eval()
    shards = []
    with atomic_dir(final) as tmp:
        for s, start in enumerate(range(0, len(sequences), shard_size)):
            part = sequences[start : start + shard_size]
            name = f"shard-{s:05d}"
            idx_rows, logp_rows = [], []
            if chosen.name == "vllm":
                for _ in part:
                    i, lp = next(streamed)
                    idx_rows.append(i)
                    logp_rows.append(lp)
            else:
                for b in range(0, len(part), batch_size):
                    batch = collate(part[b : b + batch_size], pad_id)
                    i, lp = batch_topk(teacher, batch, k, temperature, vocab)
                    idx_rows.append(i.to(torch.int32).cpu().numpy())
                    logp_rows.append(lp.float().cpu().numpy())
            lengths = [len(x.target_pos) for x in part]
            folder = tmp / name
            folder.mkdir()
            np.save(folder / "index.npy", np.array([x.index for x in part], dtype=np.int64))
            np.save(folder / "offsets.npy", np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
            np.save(folder / "idx.npy", np.concatenate(idx_rows))
            np.save(folder / "logp.npy", np.concatenate(logp_rows))
            shards.append(name)
        k_eff = int(np.load(tmp / shards[0] / "idx.npy", mmap_mode="r").shape[1])
        atomic_write_json(
            tmp / "meta.json",
            {"k": k_eff, "temperature": temperature, "vocab": vocab, "teacher": teacher_fp, "shards": shards,
             "n_sequences": len(sequences), "backend": chosen.record()},
        )
    return TeacherLogits(final)
