"""``--device`` / ``--dtype`` for every verb that runs a model, declared once (models/runtime.py)."""

from __future__ import annotations

import functools
import inspect

import typer

DEVICE_HELP = "auto (a CUDA GPU when there is one, else mps, else the CPU) | cpu | cuda | cuda:N | mps."
DTYPE_HELP = ("auto (bf16 weights on a GPU; fp32 weights on the CPU, bf16 autocast when training where measured "
              "faster) | float32 | bfloat16 | float16.")


def with_runtime(command=None, *, resolve: bool = True):
    """Give a typer command ``--device`` and ``--dtype`` and call it with ``runtime=``.

    ``resolve=True``: a resolved ``Runtime`` (a device that is not there, or a dtype it cannot run, is one
    line and exit 2 before anything loads). ``resolve=False`` (study verbs): ``runtime={"device": …,
    "dtype": …}`` with None for what was not given, to override the spec's ``runtime:`` block."""
    if command is None:
        return functools.partial(with_runtime, resolve=resolve)
    default = "auto" if resolve else None
    kind = str if resolve else str | None
    sig = inspect.signature(command)
    own = [p for p in sig.parameters.values() if p.name != "runtime"]
    extra = [inspect.Parameter("device", inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                               default=typer.Option(default, "--device", help=DEVICE_HELP)),
             inspect.Parameter("dtype", inspect.Parameter.KEYWORD_ONLY, annotation=kind,
                               default=typer.Option(default, "--dtype", help=DTYPE_HELP))]

    @functools.wraps(command)
    def wrapper(*args, device=default, dtype=default, **kwargs):
        if resolve:
            from taskdistill.models.runtime import resolve_runtime

            runtime = resolve_runtime(device, dtype)
        else:
            runtime = {"device": device, "dtype": dtype}
        return command(*args, runtime=runtime, **kwargs)

    wrapper.__signature__ = sig.replace(parameters=own + extra)
    return wrapper
