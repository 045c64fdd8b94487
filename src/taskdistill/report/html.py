"""One self-contained HTML page: inline CSS, inline SVG plots, plain tables; nothing fetched."""

from __future__ import annotations

import html
import json
import math

from taskdistill.report.data import GK_AGGREGATE
from taskdistill.report.plots import nice

CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
main{max-width:1280px;margin:0 auto;padding:18px 28px 60px}
h1{font-size:1.6em;margin:.2em 0}h2{font-size:1.2em;margin:1.6em 0 .4em;border-bottom:1px solid #ddd;padding-bottom:.2em}
.sub{color:#666;margin:0 0 1em}.cards{display:flex;flex-wrap:wrap;gap:12px;margin:12px 0}
.card{background:#fff;border:1px solid #e3e3e3;border-radius:6px;padding:10px 14px;min-width:170px}
.card b{display:block;font-size:1.25em}.card span{color:#666;font-size:.85em}
figure.plot{background:#fff;border:1px solid #e3e3e3;border-radius:6px;margin:10px 0;padding:8px;overflow-x:auto}
figure.plot svg{max-width:100%;height:auto;display:block}figcaption{color:#555;font-size:.88em;margin-top:4px}
.no-data{background:#fff8e1;border:1px dashed #e0b000;border-radius:6px;padding:14px;color:#6b5400}
table{border-collapse:collapse;background:#fff;font-size:.82em;margin:8px 0}
th,td{border:1px solid #e3e3e3;padding:3px 7px;text-align:right;white-space:nowrap}
th{background:#f2f2f2;position:sticky;top:0}td.l,th.l{text-align:left}td.l{white-space:normal;max-width:560px}
.scroll{max-height:520px;overflow:auto;border:1px solid #e3e3e3}
.rec{background:#eef7ee;border:1px solid #9c9;border-radius:6px;padding:12px 16px}
.rec.miss{background:#fdeeee;border-color:#d99}
.verdict{font-weight:600}.reproduced{color:#1b7a1b}.contradicted{color:#b00020}.inconclusive,.untestable{color:#8a6d00}
pre{background:#fff;border:1px solid #e3e3e3;padding:8px;font-size:.8em;overflow-x:auto}
nav a{margin-right:12px;font-size:.9em}
"""


def esc(x) -> str:
    return html.escape(str(x))


def fmt(x, digits: int = 3) -> str:
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        if math.isnan(x):
            return "–"
        if abs(x) >= 1e5:
            return f"{x / 1e6:.2f} M"
        return f"{x:.{digits}g}" if abs(x) < 1e-2 and x != 0 else f"{x:.{digits}f}".rstrip("0").rstrip(".")
    return esc(x)


def table(headers: list[str], rows: list[list], left: int = 0, scroll: bool = False) -> str:
    head = "".join(f'<th class="{"l" if i < left else ""}">{esc(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f'<td class="{"l" if i < left else ""}">{fmt(c) if not isinstance(c, str) else esc(c)}</td>'
                         for i, c in enumerate(row)) + "</tr>" for row in rows)
    out = f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    return f'<div class="scroll">{out}</div>' if scroll else out


def figure(name: str, plot: tuple[str | None, str | None], caption: str) -> str:
    svg, reason = plot
    if svg is None:
        return f'<div class="no-data" data-plot="{esc(name)}"><b>No plot:</b> {esc(reason)}.</div>'
    return f'<figure class="plot" data-plot="{esc(name)}">{svg}<figcaption>{esc(caption)}</figcaption></figure>'


def _kappa(x, interval=None) -> str:
    if x is None:
        return "–"
    out = f"{x:.3f}"
    if interval:
        out += f" [{interval[0]:.3f}, {interval[1]:.3f}]"
    return out


def effect_text(effect: dict | None) -> str:
    """``value [lo, hi]`` of a finding's effect, with its level."""
    if not effect:
        return "–"
    def num(x):
        return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:+.3f}" if effect["name"] != \
            "loo_error_ratio" else f"{x:.2f}"
    return f"{num(effect.get('value'))} [{num(effect.get('lo'))}, {num(effect.get('hi'))}]"


def effect_n(effect: dict | None) -> str:
    """What an effect rests on (points, branches, items …)."""
    if not effect or not effect.get("n"):
        return "–"
    return ", ".join(f"{k} {_plain(v)}" for k, v in effect["n"].items())


def _plain(v) -> str:
    """A value of an effect's n as plain text (escaped once, where it is placed): nested maps and lists flattened."""
    if isinstance(v, dict):
        return "(" + "; ".join(f"{k} {_plain(x)}" for k, x in v.items()) + ")"
    if isinstance(v, (list, tuple)):
        return ", ".join(_plain(x) for x in v)
    if isinstance(v, float) and not v.is_integer():
        return f"{v:.4g}" if abs(v) < 1e-2 else f"{v:.1f}" if abs(v) >= 100 else f"{v:.3g}"
    return fmt(v) if not isinstance(v, str) else v


def findings_section(results: dict) -> str:
    """The paper's three findings as tests on this study's data: effect, 95 % interval, n and verdict."""
    found = results.get("findings") or []
    if not found:
        return '<div class="no-data"><b>No findings:</b> the laws were not fitted for this report.</div>'
    rows = "".join(
        f'<tr><td class="l"><b>{esc(f["id"])}</b> {esc(f["claim"])}</td>'
        f'<td class="l">{esc((f.get("effect") or {}).get("name", "–"))}</td><td>{esc(effect_text(f.get("effect")))}</td>'
        f'<td class="l">{esc(effect_n(f.get("effect")))}</td>'
        f'<td class="l"><span class="verdict {esc(f["verdict"])}">{esc(f["verdict"])}</span></td>'
        f'<td class="l">{esc(f["why"])}</td></tr>' for f in found)
    head = "".join(f'<th class="l">{h}</th>' for h in ("finding", "effect", "value [95 % interval]", "n",
                                                       "verdict", "why"))
    return (f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            '<p class="sub">Verdicts are tests on this study\'s own data at its power: reproduced / contradicted '
            "when the interval excludes the null, inconclusive when it does not.</p>")


def laws_section(results: dict) -> str:
    rows = []
    for c in results["curves"]:
        if "q" in c:
            params = ", ".join(f"{k}={v:.3g}" for k, v in c["params"].items() if isinstance(v, (int, float)))
            rows.append([nice(c["metric"]), c["label"], c["dataset_size"], c["form"], params,
                         _kappa(c.get("kappa50"), c.get("kappa50_interval")), c["starts_reached"], c["n_points"],
                         c["bootstrap"]])
        else:
            rows.append([nice(c["metric"]), c["label"], c["dataset_size"], c["form"], "no law: " + c["note"], "–", "–",
                         "–", "–"])
    if not rows:
        return '<div class="no-data"><b>No laws:</b> no metric had observations to fit.</div>'
    return table(["metric", "group", "D", "form", "parameters", "κ50 [95 % interval]", "starts at best", "points",
                  "bootstrap"], rows, left=5)


def recommendation_section(results: dict) -> str:
    rec = results["recommendation"]
    cons = ", ".join(f"{k.replace('_', ' ')} {fmt(v)}" for k, v in rec["constraints"].items() if v is not None)
    out = []
    choice = rec["choice"]
    if choice:
        out.append(f'<div class="rec"><b>Recommended (observed):</b> {_setting(choice)} — macro-F1 '
                   f'{fmt(choice.get("task_macro_f1"))}, GK retention {fmt(choice.get("gk_retention"))}, '
                   f'{fmt(choice.get("params"))} parameters, {fmt(choice.get("latency_ms"))} ms per headline. '
                   f'The cheapest of {len(rec["meets"])} student(s) meeting: {esc(cons)}.</div>')
    else:
        closest = rec.get("closest")
        near = f" Closest: {_setting(closest)} (macro-F1 {fmt(closest.get('task_macro_f1'))}, GK retention " \
               f"{fmt(closest.get('gk_retention'))}, {fmt(closest.get('params'))} parameters)." if closest else ""
        out.append(f'<div class="rec miss"><b>No observed student meets</b> {esc(cons)}.{near}</div>')
    law = results.get("law_recommendation")
    if law:
        out.append(law_table(law))
    elif results.get("law_recommendation_note"):
        out.append(f'<p class="sub">No recommendation from the fitted laws: {esc(results["law_recommendation_note"])}</p>')
    return "".join(out)


def law_table(law: dict) -> str:
    """The laws stage's ranked settings (or the closest ones), with intervals and P(meet)."""
    ranked = law.get("ranked") or []
    entries = ranked or law.get("closest") or []
    metrics = list(law["constraints"]["quality"])
    rows = [[str(e.get("supervision")), str(e.get("method")), str(e.get("schedule")), e.get("keep_fraction"),
             e.get("dataset_size"), e.get("family"), e.get("p_mean_meets_all"), e.get("p_new_meets_all", e.get("p_meet")),
             e.get("params")]
            + [f"{e['predicted'][m]['value']:.3f} [{e['predicted'][m]['lo']:.3f}, {e['predicted'][m]['hi']:.3f}]"
               for m in metrics] for e in entries[:8]]
    head = (f"<p><b>From the fitted laws</b> ({law['bootstrap']} bootstrap replicates; ranked on the probability "
            f"that a newly trained student meets every constraint, seed spread and test noise included, ≥ "
            f"{law['constraints']['confidence']}): " + ("ranked settings, smallest first." if ranked else
            "no setting reaches the confidence; the closest:") + "</p>")
    nxt = law.get("next_run")
    tail = (f"<p>Next run that most reduces the uncertainty at the recommended point: "
            f"{esc(', '.join(f'{k} = {v}' for k, v in nxt.items()))}.</p>") if nxt else ""
    notes = "".join(f'<p class="sub">{esc(n)}</p>' for n in law.get("notes", [])[:5])
    return head + table(["supervision", "method", "schedule", "κ", "D", "law", "P(mean meets)", "P(new student meets)",
                         "params"]
                        + [f"{nice(m)} [95 %]" for m in metrics], rows, left=3) + tail + notes


PRUNED = "pruned, not recovered"  # how a model evaluated right after its prune (D = 0) is named


def setting_text(r: dict, schedule: bool = True) -> str:
    """``κ = …, D = …, supervision · method[ · schedule]`` of a run; a model evaluated right after its prune
    (D = 0) is named as such."""
    d = PRUNED if not r.get("dataset_size") else f"D = {r['dataset_size']:g}"
    tail = f" · {r.get('schedule')}" if schedule else ""
    return f"κ = {r['keep_fraction']:g}, {d}, {r.get('supervision')} · {r.get('method')}{tail}"


def _setting(r: dict) -> str:
    return esc(setting_text(r))


def runs_table(runs: list[dict], gk: list[str]) -> str:
    if not runs:
        return '<div class="no-data"><b>No runs</b> are recorded in this study.</div>'
    headers = ["status", "supervision", "method", "schedule", "κ", "D", "seed", "step", "params", "latency ms",
               "macro-F1", "accuracy", "NLL", "Brier"] + [nice(g) for g in gk] + ["artifact"]
    rows = []
    for r in runs:
        name = str(r.get("artifact") or "")
        rows.append([str(r.get("status")), "teacher" if r.get("is_teacher") else str(r.get("supervision")),
                     str(r.get("method") or "–"), str(r.get("schedule") or "–"), r.get("keep_fraction"),
                     r.get("dataset_size"), r.get("seed"), r.get("step_index"), r.get("params"), r.get("latency_ms"),
                     r.get("task_macro_f1"), r.get("task_accuracy"), r.get("nll"), r.get("brier")]
                    + [r.get(g) for g in gk] + [name.rsplit("/", 1)[-1]])
    return table(headers, rows, left=4, scroll=True)


def cost_table(runs: list[dict]) -> str:
    rows = []
    for r in runs:
        c = r.get("cost")
        if not isinstance(c, dict):
            continue
        rows.append(["teacher" if r.get("is_teacher") else f"{r.get('supervision')} · {r.get('method')}",
                     r.get("keep_fraction"), r.get("dataset_size"), c.get("params_total"), c.get("params_non_embedding"),
                     (c.get("flops_per_token") or 0) / 1e6, c.get("context_length"),
                     (c.get("prefill_tokens_per_s") or {}).get("1"), (c.get("decode_tokens_per_s") or {}).get("1"),
                     c.get("latency_ms_batch1"), c.get("latency_ms_batched"), c.get("batch_size_batched"),
                     c.get("peak_rss_mb"), c.get("torch_threads")])
    if not rows:
        return '<div class="no-data"><b>No cost measurements</b> are stored with these runs.</div>'
    return table(["student", "κ", "D", "params", "non-embedding", "MFLOPs/token", "context", "prefill tok/s (B=1)",
                  "decode tok/s (B=1)", "latency ms (B=1)", "latency ms (batched)", "batch", "peak RSS MB",
                  "threads"], rows, left=1, scroll=True)


def provenance_section(prov: dict) -> str:
    rows = []
    for key in sorted(prov):
        value = prov[key]
        text = json.dumps(value, indent=1, default=str) if isinstance(value, (dict, list)) else str(value)
        rows.append(f'<tr><th class="l">{esc(key)}</th><td class="l"><pre>{esc(text)}</pre></td></tr>'
                    if isinstance(value, (dict, list)) else
                    f'<tr><th class="l">{esc(key)}</th><td class="l">{esc(text)}</td></tr>')
    return f"<table>{''.join(rows)}</table>" if rows else '<div class="no-data">No provenance recorded.</div>'


def cards(results: dict) -> str:
    t = results["teacher"]
    items = [(results["counts"]["students"], "students evaluated"), (results["counts"]["runs"], "runs in the store")]
    if "task_macro_f1" in t:
        items.append((fmt(t["task_macro_f1"]), "teacher macro-F1"))
    if GK_AGGREGATE in t:
        items.append((fmt(t[GK_AGGREGATE]), "teacher GK aggregate"))
    for f in results.get("findings") or []:
        items.append((f["verdict"], f"{f['id']}: {f['claim']}"))
    return '<div class="cards">' + "".join(f"<div class=card><b>{esc(v)}</b><span>{esc(s)}</span></div>"
                                           for v, s in items) + "</div>"


def render_html(results: dict, plots: dict) -> str:
    prov = results["provenance"]
    teacher = prov.get("teacher")
    teacher_name = teacher.get("ref") or teacher.get("name") if isinstance(teacher, dict) else teacher
    sections = [
        ("findings", "Findings: the paper's three claims tested on this study", findings_section(results)),
        ("laws", "In-domain quality vs compression", figure("in_domain", plots["in_domain"],
         "Points: seeds (faint) and their mean; solid line: fitted law with its 95 % bootstrap band "
         "(dashed: no law could be fitted, means joined); star: teacher.")
         + laws_section(results)),
        ("gk", "General-knowledge retention vs compression", figure("gk", plots["gk"],
         "Retention q = (accuracy − chance) / (teacher − chance) per benchmark; dotted line q = 0.5.")),
        ("collapse", "Collapse gap", figure("collapse", plots["collapse"],
         "In-domain (blue) and general-knowledge (red) retention per group; shaded: between the two κ50.")),
        ("data", "Dataset size", figure("dataset_size", plots["dataset_size"], "Metric vs distillation examples per κ.")),
        ("schedule", "Iterative vs one-shot", figure("schedule", plots["schedule"], "Same supervision · method, each schedule.")),
        ("pareto", "Pareto frontier", figure("pareto", plots["pareto"],
         "Cost vs macro-F1, colour = GK retention; ringed: no other student is cheaper and at least as good on both.")),
        ("rec", "Recommendation", recommendation_section(results)),
        ("runs", "Runs", runs_table(results["runs"], results["metrics"]["gk"] + results["metrics"]["gk_aggregate"])),
        ("cost", "Cost of every student", cost_table(results["runs"])),
        ("prov", "Provenance", provenance_section(prov)),
    ]
    nav = "".join(f'<a href="#{k}">{esc(t)}</a>' for k, t, _ in sections)
    body = "".join(f'<section id="{k}"><h2>{esc(t)}</h2>{content}</section>' for k, t, content in sections)
    title = f"taskdistill report — {prov.get('study', 'study')}"
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" '
            f'content="width=device-width,initial-scale=1"><title>{esc(title)}</title><style>{CSS}</style></head>'
            f'<body><main><h1>{esc(title)}</h1><p class="sub">teacher {esc(teacher_name or "–")} · generated '
            f'{esc(results["generated"])} · taskdistill {esc(results["version"])}</p>{cards(results)}'
            f"<nav>{nav}</nav>{body}</main></body></html>")
