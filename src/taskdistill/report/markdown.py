"""report.md: the study's answer in a few lines and tables, for a pull request or a chat."""

from __future__ import annotations

from taskdistill.report.html import PRUNED, effect_n, effect_text, fmt, setting_text
from taskdistill.report.plots import nice


def _md_table(headers: list[str], rows: list[list]) -> list[str]:
    cell = lambda c: (fmt(c) if not isinstance(c, str) else c).replace("|", "\\|")  # a bare | would end the cell
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def findings_lines(results: dict) -> list[str]:
    """The Findings section: one row per claim of the paper, tested on the study's own data."""
    found = results.get("findings") or []
    lines = ["## Findings (the paper's three claims, tested on this study)"]
    if not found:
        return lines + ["The laws were not fitted for this report.", ""]
    rows = [[f"**{f['id']}** {f['claim']}", (f.get("effect") or {}).get("name", "–"), effect_text(f.get("effect")),
             effect_n(f.get("effect")), f"**{f['verdict']}**", f["why"]] for f in found]
    return lines + _md_table(["finding", "effect", "value [95 % interval]", "n", "verdict", "why"], rows) + [""]


def render_markdown(results: dict) -> str:
    prov = results["provenance"]
    teacher = prov.get("teacher")
    teacher_name = (teacher.get("ref") or teacher.get("name")) if isinstance(teacher, dict) else teacher
    lines = [f"# taskdistill report — {prov.get('study', 'study')}", "",
             (f"Teacher {teacher_name or '–'}; {results['counts']['students']} students evaluated "
              f"({results['counts']['runs']} runs in the store). Full page: `report.html`; numbers: `results.json`."), ""]

    lines += findings_lines(results)
    rec = results["recommendation"]
    cons = ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in rec["constraints"].items() if v is not None)
    lines.append("## Recommendation")
    if rec["choice"]:
        c = rec["choice"]
        lines.append(f"**{setting_text(c)}**: macro-F1 {fmt(c.get('task_macro_f1'))}, GK retention "
                     f"{fmt(c.get('gk_retention'))}, {fmt(c.get('params'))} parameters — the cheapest observed student "
                     f"meeting {cons}.")
    else:
        c = rec.get("closest")
        near = (f" Closest: {setting_text(c, schedule=False)} (macro-F1 {fmt(c.get('task_macro_f1'))}, GK retention "
                f"{fmt(c.get('gk_retention'))}).") if c else ""
        lines.append(f"No observed student meets {cons}.{near}")
    law = results.get("law_recommendation")
    if law and law.get("recommended"):
        e = law["recommended"]
        preds = ", ".join(f"{nice(m)} {p['value']:.3f} [{p['lo']:.3f}, {p['hi']:.3f}]" for m, p in e["predicted"].items())
        lines += ["", (f"From the fitted laws ({e['family']}): {setting_text(e)}: {preds}; "
                       f"P(the mean meets every constraint) = {e.get('p_mean_meets_all', float('nan')):.2f}, "
                       f"P(a newly trained student meets them) = {e.get('p_new_meets_all', e['p_meet']):.2f}.")]
        if law.get("next_run"):
            lines.append("Next run to sample: " + ", ".join(f"{k} = {v}" for k, v in law["next_run"].items()) + ".")
    elif law:
        lines += ["", f"From the fitted laws: no setting reaches P(meet) ≥ {law['constraints']['confidence']}."]
    elif results.get("law_recommendation_note"):
        lines += ["", f"No recommendation from the fitted laws: {results['law_recommendation_note']}"]
    lines.append("")

    fitted = [c for c in results["curves"] if "q" in c]
    refused = [c for c in results["curves"] if "note" in c]
    lines.append("## Collapse points (κ50: retention 0.5)")
    if fitted:
        lines += _md_table(["metric", "group", "κ50", "95 % interval"], [
            [nice(c["metric"]), c["label"], c.get("kappa50"),
             "–" if not c.get("kappa50_interval") else f"{c['kappa50_interval'][0]:.3f} – {c['kappa50_interval'][1]:.3f}"]
            for c in fitted])
    else:
        lines.append("No law could be fitted.")
    for c in refused:
        lines.append(f"- {nice(c['metric'])}, {c['label']}: no law — {c['note']}")
    gaps = [g for g in results["gaps"] if g["gap"] is not None]
    if gaps:
        lines += ["", "General knowledge collapses at a larger κ than the task (gap = κ50 GK − κ50 in-domain):"]
        lines += [f"- {g['label']}: {g['gap']:+.3f}" for g in gaps]
    lines.append("")

    lines.append("## Students (seed means)")
    rows = [[("teacher" if s["teacher"] else f"{s['supervision']} · {s['method']} · {s['schedule']}"),
             s["keep_fraction"], _d_cell(s), s.get("params"), s.get("task_macro_f1"), s.get("task_accuracy"),
             s.get("gk_retention")] for s in results["students"]]
    lines += _md_table(["student", "κ", "D", "params", "macro-F1", "accuracy", "GK retention"], rows)
    front = results["pareto"]
    if front:
        lines += ["", f"Pareto frontier (params vs macro-F1 vs GK retention): {len(front)} student(s): " + "; ".join(
            f"κ={p['keep_fraction']:g} {_d_cell(p, compact=True)} {p['supervision']}·{p['method']}" for p in front) + "."]
    lines.append("")
    return "\n".join(lines)


def _d_cell(s: dict, compact: bool = False):
    """The dataset size of a row: the teacher's is blank, a model right after its prune is "pruned"."""
    if s.get("teacher"):
        return ""
    if not s.get("dataset_size"):
        return "pruned" if compact else f"0 ({PRUNED})"
    return f"D={s['dataset_size']:g}" if compact else s["dataset_size"]
