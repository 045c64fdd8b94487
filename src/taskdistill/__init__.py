"""taskdistill: how small can a teacher LLM get for one task, and what does it forget on the way."""

__version__ = "0.1.0"
