"""A stand-in for the ``vllm`` package, for tests without vLLM or a GPU.

``make()`` returns a fresh module with ``LLM``, ``SamplingParams`` and ``Logprob`` whose call shapes and
outputs follow vLLM's: ``LLM(model=…, **engine)``, ``generate(prompts, params, use_tqdm=…)`` over
``{"prompt_token_ids": [...]}`` prompts, request outputs with ``.outputs[0].text / .token_ids`` and
``.prompt_logprobs`` (entry 0 None, then ``{token_id: Logprob(logprob, rank, decoded_token)}`` holding
the actual token with its rank and the top-k with ranks 1…k). The numbers come from a tiny HF model
registered under the name vLLM is asked to load (``module.LLM.models[name] = (model, tokenizer)``):
greedy decoding with vLLM's stop rules, and log-softmax of the model's own logits, so an HF path and
the vLLM path over the same model must agree. ``module.LLM.script = [text, …]`` makes ``generate``
return those texts instead (token ids from the registered tokenizer).
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import ClassVar

import torch


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


@dataclass
class CompletionOutput:
    text: str
    token_ids: list[int]
    finish_reason: str


@dataclass
class RequestOutput:
    prompt_token_ids: list[int]
    outputs: list[CompletionOutput]
    prompt_logprobs: list | None = None


SAMPLING_FIELDS = ("temperature", "max_tokens", "stop", "include_stop_str_in_output", "prompt_logprobs",
                   "prompt_logprob_start", "flat_logprobs", "detokenize")


def make(fields: tuple[str, ...] = SAMPLING_FIELDS):
    """A fresh fake ``vllm`` module; ``fields`` are the SamplingParams fields this "version" has."""

    class SamplingParams:
        __struct_fields__ = fields

        def __init__(self, **kwargs):
            unknown = set(kwargs) - set(fields)
            if unknown:
                raise TypeError(f"unexpected SamplingParams fields {sorted(unknown)}")
            self.temperature, self.max_tokens, self.stop = 1.0, 16, None
            self.include_stop_str_in_output, self.prompt_logprobs, self.prompt_logprob_start = False, None, None
            self.__dict__.update(kwargs)

    class LLM:
        models: ClassVar[dict] = {}
        instances: ClassVar[list] = []
        script: list[str] | None = None

        def __init__(self, model: str, **engine):
            if model not in LLM.models:
                raise OSError(f"fake vLLM cannot load {model!r}")
            self.kwargs = {"model": model, **engine}
            self.model, self.tokenizer = LLM.models[model]
            self.requests: list = []
            LLM.instances.append(self)

        def generate(self, prompts, sampling_params=None, *, use_tqdm=True):
            params = sampling_params if isinstance(sampling_params, list) else [sampling_params] * len(prompts)
            assert len(params) == len(prompts)
            outs = []
            for n, (prompt, p) in enumerate(zip(prompts, params, strict=True)):
                ids = list(prompt["prompt_token_ids"])
                self.requests.append((ids, p))
                if LLM.script is not None:
                    text = LLM.script[n]
                    completion = CompletionOutput(text, self.tokenizer(text, add_special_tokens=False)["input_ids"],
                                                  "stop")
                else:
                    completion = self._greedy(ids, p)
                logprobs = self._prompt_logprobs(ids, p) if p.prompt_logprobs is not None else None
                outs.append(RequestOutput(ids, [completion], logprobs))
            return outs

        @torch.no_grad()
        def _greedy(self, ids: list[int], p) -> CompletionOutput:
            eos = self.model.generation_config.eos_token_id
            eos = set(eos if isinstance(eos, list) else [eos if eos is not None else self.tokenizer.eos_token_id])
            out: list[int] = []
            while len(out) < p.max_tokens:
                logits = self.model(torch.tensor([ids + out])).logits[0, -1]
                out.append(int(logits.argmax()))
                if out[-1] in eos:
                    return CompletionOutput(self.tokenizer.decode(out, skip_special_tokens=True), out, "stop")
                text = self.tokenizer.decode(out, skip_special_tokens=True)
                hits = [text.index(s) + (len(s) if p.include_stop_str_in_output else 0)
                        for s in p.stop or () if s in text]
                if hits:
                    return CompletionOutput(text[: min(hits)], out, "stop")
            return CompletionOutput(self.tokenizer.decode(out, skip_special_tokens=True), out, "length")

        @torch.no_grad()
        def _prompt_logprobs(self, ids: list[int], p) -> list:
            k = p.prompt_logprobs
            logp = torch.log_softmax(self.model(torch.tensor([ids])).logits[0].float(), dim=-1)
            start = p.prompt_logprob_start or 0
            rows: list = [None] * (start + 1)
            for t in range(start + 1, len(ids)):
                dist = logp[t - 1]
                actual = ids[t]
                entry = {actual: Logprob(float(dist[actual]), int((dist > dist[actual]).sum()) + 1)}
                top = dist.topk(k)
                for rank, (value, tid) in enumerate(zip(top.values.tolist(), top.indices.tolist(), strict=True), 1):
                    entry[tid] = Logprob(value, rank)
                rows.append(entry)
            return rows

    module = types.ModuleType("vllm")
    module.LLM, module.SamplingParams, module.Logprob = LLM, SamplingParams, Logprob
    return module

