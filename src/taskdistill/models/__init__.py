"""Models: load any reference (hub id, local folder, .gguf, built-in name), built-in teachers, prompts,
and the inference helpers the stages share (generation, parameter counts)."""

from taskdistill.lazy import exports

_NAMES = {
    "load_model": "load",
    "save_model": "load",
    "resolve": "load",
    "model_fingerprint": "load",
    "reference_fingerprint": "load",
    "pull": "builtin",
    "BUILTINS": "builtin",
    "PromptFormat": "prompts",
    "build_prompt": "prompts",
    "generate_texts": "generate",
    "count_parameters": "params",
}
__all__ = list(_NAMES)
__getattr__, __dir__ = exports(__name__, _NAMES)
