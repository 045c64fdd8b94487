"""The real SmolLM2 teacher answers a sanity prompt (slow: loads the 135M model)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow


def test_teacher_knows_the_capital_of_france(teacher_path):
    from taskdistill.models import prompts
    from taskdistill.models.generate import generate_texts
    from taskdistill.models.load import load_model

    model, tok = load_model(str(teacher_path))
    questions = ["What is the capital of France?", "What is the capital of Japan?"]
    ids = [
        prompts.encode(tok, tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False,
                                                    add_generation_prompt=True))[0]
        for q in questions
    ]
    answers = generate_texts(model, tok, ids, max_new_tokens=24, batch_size=2)
    assert "Paris" in answers[0], answers[0]
    assert "Tokyo" in answers[1], answers[1]
