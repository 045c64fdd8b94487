"""Models: load any reference (hub id, local folder, .gguf, built-in name), built-in teachers, prompts."""
