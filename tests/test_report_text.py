"""Text pieces of the report: table cells, an effect's n, the name of a setting."""

from taskdistill.report.html import effect_n, esc, setting_text
from taskdistill.report.markdown import _md_table


def test_a_bar_inside_a_markdown_cell_does_not_split_the_row():
    lines = _md_table(["effect", "value"], [["LOO mean |error|", 1.5]])
    assert lines[2] == "| LOO mean \\|error\\| | 1.5 |"
    assert lines[2].replace("\\|", "").count("|") == 3


def test_an_effect_n_with_nested_maps_is_plain_text_escaped_once():
    n = {"points": 20, "items": {"task_macro_f1": 268.44718, "gk": 200.0},
         "reference": {"gk": "the teacher's standard error"}, "bootstrap": ["parametric"]}
    text = effect_n({"n": n})
    assert text == ("points 20, items (task_macro_f1 268.4; gk 200), reference (gk the teacher's standard error), "
                    "bootstrap parametric")
    assert "&" not in text  # not escaped yet: the cell escapes it once
    assert esc(text).count("&#x27;") == 1


def test_a_model_right_after_its_prune_is_named_so():
    row = {"keep_fraction": 0.9, "dataset_size": 0, "supervision": "label", "method": "logit", "schedule": "iterative"}
    assert setting_text(row) == "κ = 0.9, pruned, not recovered, label · logit · iterative"
    assert setting_text({**row, "dataset_size": 64}, schedule=False) == "κ = 0.9, D = 64, label · logit"
