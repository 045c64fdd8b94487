"""``taskdistill laws fit|synthetic`` and ``taskdistill recommend``."""

from __future__ import annotations

import math
from pathlib import Path

import typer

from taskdistill.errors import TaskDistillError

laws_app = typer.Typer(help="Fit scaling laws (with intervals and held-out checks) to a study's observations.",
                       no_args_is_help=True)
STUDY_HELP = "A study folder, or a CSV/JSON export of observation rows (taskdistill study export)."
CEILING_HELP = ("Free ceiling for in-domain laws (students above the teacher): auto (when it lowers AICc by ≥ 2) | "
                "never | always.")
KIND_HELP = "Bootstrap: auto (branches when ≥ 40, else parametric) | branches | runs | parametric."


def parse_count(text: str | None) -> float | None:
    """'60M' → 60e6; plain numbers pass through; K, M, B/G suffixes."""
    if text is None:
        return None
    units = {"k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9}
    t = text.strip().lower()
    try:
        return float(t[:-1]) * units[t[-1]] if t and t[-1] in units else float(t)
    except ValueError:
        raise TaskDistillError(f"cannot read {text!r} as a count; write e.g. 60M, 1.5B or 60000000") from None


def _targets(items: list[str]) -> dict:
    out = {}
    for item in items:
        metric, sep, value = item.partition("=")
        try:
            out[metric] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise TaskDistillError(f"--target {item!r}: write METRIC=VALUE, e.g. macro_f1=0.85")
    return out


def check_range(option: str, value: float | None, lo: float, hi: float, *, open_lo: bool = False,
                open_hi: bool = False, hint: str = "") -> None:
    """One TaskDistillError line naming the option and its valid range when ``value`` lies outside it."""
    if value is None:
        return
    below = value <= lo if open_lo else value < lo
    above = value >= hi if open_hi else value > hi
    if below or above or math.isnan(value):
        left, right = "(" if open_lo else "[", ")" if open_hi else "]"
        span = f"≥ {lo:g}" if math.isinf(hi) else f"in {left}{lo:g}, {hi:g}{right}"
        raise TaskDistillError(f"{option} must be {span}{hint}; got {value:g}")


def jsonable(obj):
    """JSON-safe copy: inf/nan → None, numpy scalars and tuples → plain values."""
    if isinstance(obj, dict):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if hasattr(obj, "tolist"):
        return jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(v, digits=3) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—" if v is None else ("∞" if v > 0 else "nan")
    return f"{v:.{digits}g}"


def _interval(d: dict | None) -> str:
    if not d:
        return ""
    return f"{_fmt(d['value'])} [{_fmt(d['lo'])}, {_fmt(d['hi'])}]"


@laws_app.command("fit")
def fit_cmd(
    study: Path = typer.Argument(..., help=STUDY_HELP),
    metric: list[str] = typer.Option([], "--metric", "-m", help="Metric(s) to fit (repeat); default: all."),
    family: list[str] = typer.Option(["a1", "c1"], "--family", "-f",
                                     help="Law family (repeat): a1 (κ power law), a2 (logistic in log κ), "
                                          "b1 (data law), c1 (joint κ × D, with supervision/schedule multipliers), "
                                          "a1h / c1h (with a free ceiling), or any registered form."),
    loss: str = typer.Option("auto", help="auto (binomial, beta-binomial when seeds overdisperse) | binomial | "
                                          "betabinomial | huber | lsq."),
    bootstrap: int = typer.Option(100, help="Bootstrap replicates (each a full multi-start refit); 0: none."),
    level: float = typer.Option(0.95, help="Interval level."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    target: list[str] = typer.Option([], help="METRIC=VALUE: also report the data needed to reach it (b1, c1)."),
    at_kappa: float | None = typer.Option(None, help="Keep fraction κ at which --target is evaluated (c1)."),
    validate: bool = typer.Option(True, help="Leave-one-level-out and mild→severe held-out errors."),
    ceiling: str = typer.Option("auto", help=CEILING_HELP),
    kind: str = typer.Option("auto", help=KIND_HELP),
    study_name: str | None = typer.Option(None, help="Study name inside a study folder (default: folder name)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full result as JSON here."),
) -> None:
    """Fit laws per metric and slice: parameters with intervals, κ50, held-out errors (accuracy points), AICc."""
    from taskdistill.cache import atomic_write_json, check_writable
    from taskdistill.laws.analysis import fit_study
    from taskdistill.laws.observations import load_rows

    check_range("--bootstrap", bootstrap, 0, math.inf, hint=" (0: point estimates only)")
    check_range("--level", level, 0, 1, open_lo=True, open_hi=True, hint=", e.g. 0.95")
    if json_out:
        check_writable(json_out, "--json")
    rows = load_rows(study, study_name)
    result = fit_study(rows, metric or None, tuple(family), loss=loss, B=bootstrap, seed=seed, level=level,
                       validate=validate, target=_targets(target), at_kappa=at_kappa, ceiling=ceiling, kind=kind)
    _print_fit(result)
    if json_out:
        atomic_write_json(json_out, jsonable(result))
        typer.echo(f"wrote {json_out}")


def _slice_text(where: dict) -> str:
    short = {"keep_fraction": "κ", "dataset_size": "D"}
    return " ".join(f"{short.get(k, k)}={v:g}" if isinstance(v, float) else str(v) for k, v in where.items())


def _k50(d: dict) -> str:
    return _interval(d) + (" (extrapolated)" if d.get("extrapolated") else "")


def _print_fit(result: dict) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    console = Console()
    ok = [g for g in result["groups"] if g["status"] == "ok"]
    fits = Table("metric", "law", "slice", "n", "starts", "ΔAICc", "LOO", "mild→severe", "κ50 [interval]",
                 title=f"fitted laws (held-out errors: mean |error| in accuracy points; {result['level']:.0%} intervals)")
    params = Table("metric", "law", "slice", "parameter", "value", "interval", title="parameters")
    derived = Table("metric", "law", "slice", "quantity", "value [interval]", title="derived")
    for g in ok:
        fit, iv, val = g["fit"], g.get("intervals", {}), g.get("validation", {})
        head = (g["metric"], fit["form"], escape(_slice_text(g["slice"])))
        k50 = g.get("derived", {}).get("kappa50")
        k50_txt = _k50(k50) if k50 and "value" in k50 else "\n".join(
            f"{escape(k)}: {_k50(v)}" for k, v in (k50 or {}).items())
        fits.add_row(*head, str(fit["n_points"]), f"{fit['starts_reached']}/{fit['starts_polished']}",
                     _fmt(g.get("delta_aicc"), 2), _fmt(val.get("leave_one_level_out", {}).get("mae_points"), 2),
                     _fmt(val.get("mild_to_severe", {}).get("mae_points"), 2), k50_txt)
        for k, v in fit["params"].items():
            params.add_row(*head, escape(k), _fmt(v, 4), f"[{_fmt(iv[k][0])}, {_fmt(iv[k][1])}]" if k in iv else "")
        for name, d in g.get("derived", {}).items():
            if name == "kappa50":
                continue
            for label, v in (d.items() if "value" not in d else [("", d)]):
                derived.add_row(*head, escape(f"{name} {label}".strip()), _interval(v))
    console.print(fits)
    console.print(params)
    if derived.row_count:
        console.print(derived)
    teacher = {g["metric"]: g["bootstrap"]["reference"] for g in ok if g.get("bootstrap", {}).get("replicates")}
    for metric, how in sorted(teacher.items()):
        console.print(f"[dim]{metric}: teacher reference {escape(how)}[/dim]")
    for g in result["groups"]:
        if g["status"] != "ok":
            console.print(f"[dim]skipped {g['metric']} {g['form']} {escape(_slice_text(g['slice']))}: "
                          f"{escape(g['reason'])}[/dim]")
        for note in g.get("fit", {}).get("notes", []):
            console.print(f"[dim]{g['metric']} {g['form']}: {escape(note)}[/dim]")


@laws_app.command("synthetic")
def synthetic_cmd(
    out: Path = typer.Argument(..., help="Where to write the rows (.csv or .json)."),
    seed: int = typer.Option(0, help="Noise seed."),
) -> None:
    """Write a demo study's observation rows (two metrics, known laws) to try `laws fit` and `recommend`."""
    import csv
    import io

    from taskdistill.cache import atomic_write_json, atomic_write_text, check_writable
    from taskdistill.laws.observations import KEYS
    from taskdistill.laws.synthetic import demo_rows

    check_writable(out, "OUT")
    rows = demo_rows(seed)
    if out.suffix.lower() == ".json":
        atomic_write_json(out, rows)
    elif out.suffix.lower() == ".csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(KEYS) + sorted({k for r in rows for k in r} - set(KEYS)))
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(out, buf.getvalue())
    else:
        raise TaskDistillError(f"{out.name}: write the rows to a .csv or .json file")
    typer.echo(f"wrote {len(rows)} rows to {out}")


def recommend_cmd(
    study: Path = typer.Argument(..., help=STUDY_HELP),
    min_macro_f1: float | None = typer.Option(None, help="Least acceptable in-domain macro-F1 (fraction; may exceed "
                                                         "the teacher's)."),
    min_gk_retention: float | None = typer.Option(None, help="Least acceptable general-knowledge retention q."),
    max_params: str | None = typer.Option(None, help="Largest student, e.g. 60M."),
    max_latency_ms: float | None = typer.Option(None, help="Largest latency per request (ms)."),
    confidence: float = typer.Option(0.8, help="Least probability that a newly trained student meets every "
                                               "constraint, for a setting to qualify."),
    in_domain_metric: str | None = typer.Option(None, help="The in-domain metric --min-macro-f1 applies to "
                                                           "(default: task_macro_f1, else macro_f1)."),
    gk_metric: str | None = typer.Option(None, help="General-knowledge metric (default: the aggregate)."),
    bootstrap: int = typer.Option(100, help="Bootstrap replicates behind intervals and probabilities (≥ 1)."),
    level: float = typer.Option(0.95, help="Interval level."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
    top: int = typer.Option(10, help="How many settings to list."),
    ceiling: str = typer.Option("auto", help=CEILING_HELP),
    kind: str = typer.Option("auto", help=KIND_HELP),
    study_name: str | None = typer.Option(None, help="Study name inside a study folder (default: folder name)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the full result as JSON here."),
) -> None:
    """Rank settings (κ, D, supervision, method, schedule) that meet the constraints, with the next run to sample."""
    from rich.console import Console
    from rich.table import Table

    from taskdistill.cache import atomic_write_json, check_writable
    from taskdistill.laws.observations import load_rows
    from taskdistill.laws.recommend import recommend

    check_range("--min-gk-retention", min_gk_retention, -1, 1, hint=" (0 at chance, 1 at the teacher)")
    check_range("--min-macro-f1", min_macro_f1, 0, 1, hint=" (a fraction)")
    check_range("--confidence", confidence, 0, 1, open_lo=True, open_hi=True, hint=", e.g. 0.8")
    check_range("--bootstrap", bootstrap, 1, math.inf)
    check_range("--level", level, 0, 1, open_lo=True, open_hi=True, hint=", e.g. 0.95")
    if json_out:
        check_writable(json_out, "--json")
    rows = load_rows(study, study_name)
    result = recommend(rows, min_macro_f1=min_macro_f1, min_gk_retention=min_gk_retention,
                       max_params=parse_count(max_params), max_latency_ms=max_latency_ms, in_domain=in_domain_metric,
                       gk_metric=gk_metric, B=bootstrap, seed=seed, confidence=confidence, level=level, top=top,
                       ceiling=ceiling, kind=kind)
    console = Console()
    for note in result["notes"]:
        console.print(f"[dim]{note}[/dim]")
    entries = result["ranked"] or result.get("closest", [])
    metrics = list(result["constraints"]["quality"])
    table = Table("#", "κ", "D", "supervision", "method", "schedule", "params", "latency ms",
                  *[f"{m} [{result['level']:.0%}]" for m in metrics], "P(mean meets)", "P(new meets)",
                  title="recommended settings" if result["ranked"] else "no setting meets every constraint — closest",
                  caption="P(mean meets): confidence that the setting's mean meets every constraint; P(new meets): "
                          "probability that a newly trained student does (seed spread and test noise included)")
    for i, e in enumerate(entries, 1):
        table.add_row(str(i), f"{e['keep_fraction']:.3g}", f"{e.get('dataset_size', 0):g}", str(e.get("supervision")),
                      str(e.get("method")), str(e.get("schedule")), _fmt(e.get("params")), _fmt(e.get("latency_ms")),
                      *[_interval(e["predicted"][m]) for m in metrics], f"{e['p_mean_meets_all']:.2f}",
                      f"{e['p_new_meets_all']:.2f}")
    console.print(table)
    for m, sp in result["spread"].items():
        console.print(f"[dim]{m}: a new student scatters by seed SD {sp['seed_sd']:.3g} ({sp['source']}) plus test "
                      f"noise at n = {sp['n_test']:.0f}; teacher reference {result['reference'][m]}[/dim]")
    if json_out:
        atomic_write_json(json_out, jsonable(result))
        console.print(f"[green]wrote[/green] {json_out}")
    if not result["ranked"]:
        c = entries[0]
        raise TaskDistillError(
            f"no setting meets every constraint with P(new student meets) ≥ {confidence:g}; the closest is "
            f"κ={c['keep_fraction']:.3g}, D={c.get('dataset_size', 0):g}, {c.get('supervision')} "
            f"(P={c['p_new_meets_all']:.2f}): relax a constraint or add runs")
    nxt = result["next_run"]
    console.print(f"next run to sample: κ={nxt['keep_fraction']:.3g}, D={nxt.get('dataset_size', 0):g}, "
                  f"{nxt.get('supervision')}/{nxt.get('method')}/{nxt.get('schedule')} (removes about "
                  f"{nxt['variance_share_removed']:.0%} of the predictive variance at the recommended setting)")


def register(app: typer.Typer) -> None:
    app.add_typer(laws_app, name="laws")
    app.command("recommend")(recommend_cmd)
