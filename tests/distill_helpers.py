"""Small task data and teachers for the distillation tests."""

from __future__ import annotations

import torch

from taskdistill.data.schema import Example, TaskData

# The test machine's 2 cores are shared by many jobs: two spinning intra-op threads are ~20x slower
# than one on tiny matrices there, so the distillation tests run single-threaded.
torch.set_num_threads(1)

LABELS = ["Buyback", "Earnings", "Guidance"]
ROWS = [
    ("Acme beats quarterly earnings estimates", "Earnings"),
    ("Globex cuts full-year guidance", "Guidance"),
    ("Initech announces share buyback program", "Buyback"),
    ("Hooli earnings rise 12%", "Earnings"),
    ("Umbrella raises guidance on demand", "Guidance"),
    ("Pied Piper to buy back $2 billion of stock", "Buyback"),
    ("Acme revenue and earnings beat", "Earnings"),
    ("Globex lowers its outlook", "Guidance"),
]


def task_data(with_cot: bool = True) -> TaskData:
    examples = [
        Example(text, label, f"ex{i}", cot=f"The headline is about {label.lower()}." if with_cot else None)
        for i, (text, label) in enumerate(ROWS)
    ]
    return TaskData(examples, list(LABELS), name="tiny-task")


def sharp_teacher(tiny_model, seed: int = 1, scale: float = 40.0, **overrides):
    """A tiny random model with a scaled-up output head, so its distributions are far from uniform."""
    teacher = tiny_model(seed=seed, **overrides)
    with torch.no_grad():
        teacher.get_output_embeddings().weight.mul_(scale)
    return teacher
