"""Our lm-evaluation-harness model adapter over an in-memory HF causal LM (no save/reload).

lm-eval keeps the tasks, prompts and metrics; this class owns the throughput. Hand-written because
lm-eval's stock ``HFLM`` re-runs the shared context once per answer choice and computes vocabulary
logits for every position: here each distinct context is run once (its KV cache is then repeated
for every continuation of it), contexts are batched across items, and the output head is applied
only where a log-probability is needed. Tokenisation is lm-eval's own (``TemplateLM._encode_pair``,
``HFLM.tok_encode`` rules), so both adapters score exactly the same token sequences.
"""

from __future__ import annotations

import copy
import inspect
from collections import defaultdict

import torch
from lm_eval import utils as lm_utils
from lm_eval.api.model import TemplateLM
from lm_eval.models.utils import (
    handle_stop_sequences,
    has_bos_prefix,
    normalize_gen_kwargs,
    postprocess_generated_text,
    resolve_max_length,
)
from lm_eval.models.utils_hf import stop_sequences_criteria

PRECISIONS = ("float32", "bfloat16")


def _score(logits, targets):
    """Log-probability of each target token and whether it is the argmax (float32 softmax)."""
    logits = logits.float()
    return logits.gather(1, targets[:, None]).squeeze(1) - logits.logsumexp(-1), logits.argmax(-1) == targets


class InMemoryLM(TemplateLM):
    """lm-eval ``LM`` for a model object already in memory.

    ``batch_size`` is the number of distinct contexts run together; ``max_rows`` caps the
    continuation rows (choices) scored together, which bounds the memory of the repeated KV cache.
    ``precision="bfloat16"`` runs the model under bf16 autocast (log-probabilities stay float32);
    see benchmarks/RESULTS.md for where that is faster and how far scores move.
    """

    backend = "causal"

    def __init__(self, model, tokenizer, batch_size: int = 16, max_rows: int = 64, max_length: int | None = None,
                 precision: str = "float32"):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = int(batch_size)
        self.max_rows = int(max_rows)
        self._max_length = max_length
        self._device = next(model.parameters()).device
        self.precision = precision

    def _autocast(self):
        return torch.autocast(self._device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")

    # --- tokenisation: the same rules as lm-eval's HFLM ---------------------------------------------

    @property
    def eot_token_id(self) -> int:
        return self.tokenizer.eos_token_id

    @property
    def prefix_token_id(self) -> int:
        bos = self.tokenizer.bos_token_id
        return bos if bos is not None else self.tokenizer.eos_token_id

    @property
    def max_length(self) -> int:
        return self._max_length or resolve_max_length(self.model.config, self.tokenizer)

    @property
    def tokenizer_name(self) -> str:
        return self.tokenizer.name_or_path.replace("/", "__")

    def tok_encode(self, string: str, add_special_tokens: bool | None = None, **kwargs) -> list[int]:
        extra = {} if add_special_tokens is None else {"add_special_tokens": add_special_tokens}
        if add_special_tokens is None and has_bos_prefix(string, self.tokenizer.decode(self.prefix_token_id)):
            extra["add_special_tokens"] = False
        return self.tokenizer.encode(string, **extra)

    # --- scoring ---------------------------------------------------------------------------------

    def _parts(self):
        """(decoder body, output head) so the head runs only on the positions we score."""
        return self.model.base_model, self.model.get_output_embeddings()

    @staticmethod
    def _cache_arg(body) -> str:
        # transformers >= 5.2x names the KV-cache argument ``cache``; earlier releases ``past_key_values``
        return "cache" if "cache" in inspect.signature(body.forward).parameters else "past_key_values"

    @torch.inference_mode()
    def _loglikelihood_tokens(self, requests, disable_tqdm: bool = False, **kwargs) -> list[tuple[float, bool]]:
        limit = self.max_length
        groups: dict[tuple[int, ...], list[tuple[int, list[int]]]] = defaultdict(list)
        for index, (_, context, continuation) in enumerate(requests):
            if not continuation:
                raise ValueError("lm-eval sent an empty continuation")
            keep = max(1, limit + 1 - len(continuation))  # left-truncate the context as HFLM does
            groups[tuple(context[-keep:])].append((index, list(continuation)))
        # longest first: similar lengths share a batch, so little padding
        ordered = sorted(groups.items(), key=lambda kv: -(len(kv[0]) + max(len(c) for _, c in kv[1])))
        results: list[tuple[float, bool] | None] = [None] * len(requests)
        batch: list = []
        rows = 0
        for item in ordered:
            if batch and (len(batch) >= self.batch_size or rows + len(item[1]) > self.max_rows):
                self._score_batch(batch, results)
                batch, rows = [], 0
            batch.append(item)
            rows += len(item[1])
        if batch:
            self._score_batch(batch, results)
        return results  # type: ignore[return-value]

    def _score_batch(self, batch, results) -> None:
        with self._autocast():
            self._score_batch_inner(batch, results)

    def _score_batch_inner(self, batch, results) -> None:
        body, head = self._parts()
        device = self._device
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        lengths = torch.tensor([len(ctx) for ctx, _ in batch], device=device)
        width = int(lengths.max())
        ids = torch.full((len(batch), width), pad, dtype=torch.long, device=device)
        for row, (ctx, _) in enumerate(batch):
            ids[row, : len(ctx)] = torch.tensor(ctx, device=device)
        # right padding: pads sit after the real tokens and are masked out for every later query
        mask = (torch.arange(width, device=device)[None, :] < lengths[:, None]).long()
        positions = torch.arange(width, device=device)[None, :].expand(len(batch), -1)
        out = body(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True)
        cache = out.get("cache", None) or out.get("past_key_values", None)
        last = out.last_hidden_state[torch.arange(len(batch), device=device), lengths - 1]
        conts = [(g, index, cont) for g, (_, items) in enumerate(batch) for index, cont in items]
        owner = torch.tensor([g for g, _, _ in conts], device=device)
        # each continuation's first token is predicted from its context's last position
        first_ll, first_greedy = _score(head(last)[owner], torch.tensor([c[0] for _, _, c in conts], device=device))
        tail_ll, tail_greedy = self._score_tails(body, head, cache, mask, lengths, owner, conts, pad)
        offset = 0
        for row, (_, index, cont) in enumerate(conts):
            n = len(cont) - 1
            ll = float(first_ll[row]) + (float(tail_ll[offset : offset + n].sum()) if n else 0.0)
            greedy = bool(first_greedy[row]) and (bool(tail_greedy[offset : offset + n].all()) if n else True)
            offset += n
            results[index] = (ll, greedy)

    def _score_tails(self, body, head, cache, mask, lengths, owner, conts, pad):
        """Every continuation minus its first token, run on a copy of its context's KV cache.

        Continuations are grouped by length (longest first; a group admits rows at least two thirds as
        long as its first), so little of each forward is padding; returns the log-probability and greedy
        flag of every scored token, in ``conts`` order (row-major)."""
        device = self._device
        n_tail = [len(c) - 1 for _, _, c in conts]
        offsets = [0]
        for n in n_tail:
            offsets.append(offsets[-1] + n)
        tail_ll = torch.zeros(offsets[-1], device=device)
        tail_greedy = torch.ones(offsets[-1], dtype=torch.bool, device=device)
        order = [i for i in sorted(range(len(conts)), key=lambda i: -n_tail[i]) if n_tail[i] > 0]
        groups, start = [], 0
        while start < len(order):
            end = start + 1
            while (end < len(order) and end - start < self.max_rows
                   and 3 * n_tail[order[end]] >= 2 * n_tail[order[start]]):
                end += 1
            groups.append(order[start:end])
            start = end
        for group in groups:
            width = n_tail[group[0]]
            rows = torch.tensor(group, device=device)
            fork = copy.copy(cache)  # a copy whose layers can be re-indexed without touching the context's
            fork.layers = [copy.copy(layer) for layer in cache.layers]
            fork.reorder_cache(owner[rows])
            ids = torch.full((len(group), width), pad, dtype=torch.long, device=device)
            for r, i in enumerate(group):
                ids[r, : n_tail[i]] = torch.tensor(conts[i][2][:-1], device=device)
            n = torch.tensor([n_tail[i] for i in group], device=device)
            cont_mask = (torch.arange(width, device=device)[None, :] < n[:, None]).long()
            full_mask = torch.cat([mask[owner[rows]], cont_mask], dim=1)
            positions = lengths[owner[rows]][:, None] + torch.arange(width, device=device)[None, :]
            hidden = body(input_ids=ids, attention_mask=full_mask, position_ids=positions, use_cache=True,
                          **{self._cache_arg(body): fork}).last_hidden_state
            keep = torch.cat([torch.arange(n_tail[i], device=device) + r * width for r, i in enumerate(group)])
            targets = torch.tensor([t for i in group for t in conts[i][2][1:]], device=device)
            # one output-head product for every scored position of the group (the head weight is read once)
            ll, greedy = _score(head(hidden.reshape(-1, hidden.shape[-1])[keep]), targets)
            where = torch.cat([torch.arange(offsets[i], offsets[i + 1], device=device) for i in group])
            tail_ll[where], tail_greedy[where] = ll, greedy
        return tail_ll, tail_greedy

    def loglikelihood_rolling(self, requests, disable_tqdm: bool = False) -> list[float]:
        """Sum of token log-likelihoods of each string, in disjoint windows of the context length."""
        out = []
        for (string,) in [req.args for req in requests]:
            windows = [
                ((None, None), list(ctx), list(cont))
                for ctx, cont in map(
                    lm_utils.make_disjoint_window,
                    lm_utils.get_rolling_token_windows(
                        token_list=self.tok_encode(string), prefix_token=self.prefix_token_id,
                        max_seq_len=self.max_length, context_len=1,
                    ),
                )
            ]
            out.append(sum(ll for ll, _ in self._loglikelihood_tokens(windows)))
        return out

    # --- generation ------------------------------------------------------------------------------

    @torch.inference_mode()
    def generate_until(self, requests, disable_tqdm: bool = False) -> list[str]:
        """Batched greedy generation, stopping at the task's stop strings (or EOS)."""
        eos = self.tokenizer.decode(self.eot_token_id)
        by_kwargs: dict[str, list[int]] = defaultdict(list)
        for index, req in enumerate(requests):
            by_kwargs[repr(sorted(req.args[1].items()))].append(index)
        results: list[str | None] = [None] * len(requests)
        side = self.tokenizer.padding_side
        self.tokenizer.padding_side = "left"
        try:
            for indices in by_kwargs.values():
                kwargs = normalize_gen_kwargs(requests[indices[0]].args[1], 256)
                until = handle_stop_sequences(kwargs.pop("until", None), eos=eos)
                max_new = int(kwargs.pop("max_gen_toks"))
                if kwargs.get("do_sample"):
                    raise ValueError("InMemoryLM generates greedily only; the task asked for sampling")
                indices = sorted(indices, key=lambda i: -len(requests[i].args[0]))
                for start in range(0, len(indices), self.batch_size):
                    chunk = indices[start : start + self.batch_size]
                    self._generate(requests, chunk, until, max_new, results)
        finally:
            self.tokenizer.padding_side = side
        return results  # type: ignore[return-value]

    def _generate(self, requests, chunk, until, max_new, results) -> None:
        contexts = [requests[i].args[0] for i in chunk]
        enc = self.tokenizer(contexts, return_tensors="pt", padding="longest")
        ids = enc["input_ids"][:, -(self.max_length - max_new):].to(self._device)
        mask = enc["attention_mask"][:, -(self.max_length - max_new):].to(self._device)
        with self._autocast():
            out = self.model.generate(
                input_ids=ids, attention_mask=mask, max_new_tokens=max_new, do_sample=False,
                stopping_criteria=stop_sequences_criteria(self.tokenizer, until, ids.shape[1], ids.shape[0]),
                pad_token_id=self.tokenizer.pad_token_id, use_cache=True,
            )
        for i, tokens in zip(chunk, out[:, ids.shape[1]:].tolist(), strict=True):
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            results[i] = postprocess_generated_text(text, until, None)
