"""The report's figures, drawn with matplotlib and returned as inline SVG text (no network, no JS).

Each ``fig_*`` function takes the plain tables of :mod:`taskdistill.report.data` and the law curves
of :mod:`taskdistill.report.fits` and returns ``(svg, None)`` or ``(None, reason)`` when the study
has no data for that plot; the page shows the reason instead of silently dropping the plot.
"""

from __future__ import annotations

import io
import math

from taskdistill.report.data import GK_AGGREGATE, group_label

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]
NICE = {"task_macro_f1": "in-domain macro-F1", "task_accuracy": "in-domain accuracy", GK_AGGREGATE: "GK aggregate"}


def nice(metric: str) -> str:
    return NICE.get(metric) or (metric.removeprefix("gk_"))


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False,
                         "svg.hashsalt": "taskdistill", "axes.grid": True, "grid.alpha": 0.25})
    return plt


def to_svg(fig) -> str:
    """SVG markup of a figure (deterministic ids), without the XML prologue so it can be inlined."""
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    _plt().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _colors(labels) -> dict[str, str]:
    return {label: PALETTE[i % len(PALETTE)] for i, label in enumerate(sorted(set(labels)))}


def _grid(n: int, width: float = 4.2, height: float = 3.2, cols: int = 3):
    plt = _plt()
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False, layout="constrained")
    flat = [a for row in axes for a in row]
    for extra in flat[n:]:
        extra.set_visible(False)
    return fig, flat[:n]


def _kappa_axis(ax) -> None:
    """κ from 1 (left) to a little below the smallest plotted κ: compression grows to the right."""
    xs = [float(x) for line in ax.get_lines() if line.get_marker() not in (None, "None", "")
          for x in line.get_xdata()]
    low = min([x for x in xs if x < 1.0] or [0.5])
    ax.set_xlim(1.03, max(0.0, low - 0.08))
    ax.set_xlabel("keep fraction κ  (→ more compression)")


def _draw_law(ax, curve: dict, color: str, to_value: bool) -> None:
    """The fitted law and its 95 % band; ``to_value`` maps retention back to the metric's units."""
    if not curve or "q" not in curve:
        return
    k, ch, ref = curve["kappa"], curve["chance"], curve["reference"]

    def conv(q):
        return [ch + (ref - ch) * x for x in q] if to_value else q

    ax.plot(k, conv(curve["q"]), color=color, lw=1.6)
    if curve.get("q_lo"):
        ax.fill_between(k, conv(curve["q_lo"]), conv(curve["q_hi"]), color=color, alpha=0.15, lw=0)


def _points(ax, rows: list[dict], key: str, color: str, label: str, join: bool = False) -> None:
    """Seeds (faint) and their mean; ``join`` links the means with a thin dashed line (no law fitted)."""
    rows = sorted((r for r in rows if r[key] is not None), key=lambda r: r["keep_fraction"])
    xs = [r["keep_fraction"] for r in rows for v in r[f"{key}s"] if v is not None]
    ys = [v for r in rows for v in r[f"{key}s"] if v is not None]
    ax.scatter(xs, ys, s=10, color=color, alpha=0.35, lw=0)
    ax.plot([r["keep_fraction"] for r in rows], [r[key] for r in rows], "o--" if join else "o", ms=4.5, lw=0.8,
            color=color, label=label)


def _slices(settings: list[dict], metric: str, curves: list[dict]):
    """Per group: its rows at the dataset size the law was fitted at (largest D with most κ levels)."""
    from taskdistill.report.fits import slice_dataset_size

    rows = [s for s in settings if s["metric"] == metric and not s["teacher"]]
    fitted = {c["label"]: c for c in curves if c["metric"] == metric}
    out = {}
    for label in sorted({group_label(s) for s in rows}):
        sel = [s for s in rows if group_label(s) == label]
        D = fitted[label]["dataset_size"] if label in fitted else slice_dataset_size(sel)
        out[label] = ([s for s in sel if s["dataset_size"] == D], fitted.get(label), D)
    return out


def _teacher(ax, settings, metric, key):
    t = [s for s in settings if s["metric"] == metric and s["teacher"] and s.get(key) is not None]
    if t:
        ax.plot([1.0], [t[0][key]], "*", ms=11, color="black", label="teacher", zorder=5)


def _metric_panels(settings, curves, metrics, key: str, title: str):
    panels = [m for m in metrics if any(s["metric"] == m and not s["teacher"] for s in settings)]
    if not panels:
        return None, f"the study has no {title} observations"
    labels = {group_label(s) for s in settings if s["metric"] in panels and not s["teacher"]}
    colors = _colors(labels)
    fig, axes = _grid(len(panels))
    for ax, metric in zip(axes, panels):
        Ds = set()
        for label, (rows, curve, D) in _slices(settings, metric, curves).items():
            Ds.add(D)
            _points(ax, rows, key, colors[label], label, join=not (curve and "q" in curve))
            _draw_law(ax, curve, colors[label], to_value=key == "value")
        _teacher(ax, settings, metric, key)
        if key == "retention":
            ax.axhline(0.5, color="grey", ls=":", lw=1)
        _kappa_axis(ax)
        ax.set_ylabel("retention q" if key == "retention" else nice(metric))
        ax.set_title(f"{nice(metric)}  (D = {', '.join(f'{d:g}' for d in sorted(Ds))})")
    axes[0].legend(fontsize=7, loc="best")
    return to_svg(fig), None


def fig_in_domain(settings, curves, metrics):
    """In-domain metric vs κ per supervision · method · schedule, with the fitted law and its band."""
    return _metric_panels(settings, curves, metrics, "value", "in-domain")


def fig_gk(settings, curves, metrics):
    """General-knowledge retention vs κ per benchmark (and the aggregate), with fitted laws."""
    return _metric_panels(settings, curves, metrics, "retention", "general-knowledge")


def fig_collapse(settings, curves, gaps, in_domain="task_macro_f1", gk=GK_AGGREGATE):
    """In-domain and GK retention on one axis per group; the shaded span is the collapse gap."""
    have = {s["metric"] for s in settings if not s["teacher"] and s["retention"] is not None}
    if in_domain not in have or gk not in have:
        return None, (f"the collapse gap needs the retention of both {in_domain} and {gk}; a metric whose teacher "
                      "reference is not above chance has none (enable teacher correction in the study spec)")
    groups = sorted({group_label(s) for s in settings if s["metric"] == in_domain and not s["teacher"]})
    gap_of = {g["label"]: g for g in gaps}
    fig, axes = _grid(len(groups), cols=4, width=3.6)
    for ax, label in zip(axes, groups):
        for metric, color in ((in_domain, "#1f77b4"), (gk, "#d62728")):
            rows, curve, _ = _slices(settings, metric, curves).get(label, ([], None, None))
            _points(ax, rows, "retention", color, nice(metric), join=not (curve and "q" in curve))
            _draw_law(ax, curve, color, to_value=False)
        g = gap_of.get(label)
        if g and g["kappa50_in_domain"] is not None and g["kappa50_gk"] is not None:
            ax.axvspan(g["kappa50_in_domain"], g["kappa50_gk"], color="orange", alpha=0.18, lw=0,
                       label=f"gap {g['gap']:.2f}")
        ax.axhline(0.5, color="grey", ls=":", lw=1)
        _kappa_axis(ax)
        ax.set_ylabel("retention q")
        ax.set_title(label, fontsize=8)
        ax.legend(fontsize=7, loc="lower left")
    return to_svg(fig), None


def fig_dataset_size(settings, metrics):
    """Metric vs dataset size D per keep fraction, one panel per metric × group."""
    panels = []
    for metric, key in metrics:
        rows = [s for s in settings if s["metric"] == metric and not s["teacher"]]
        for label in sorted({group_label(s) for s in rows}):
            sel = [s for s in rows if group_label(s) == label]
            if len({s["dataset_size"] for s in sel}) >= 2:
                panels.append((metric, key, label, sel))
    if not panels:
        return None, "every group has a single dataset size, so there is no dataset-size curve"
    fig, axes = _grid(len(panels), cols=4, width=3.6)
    all_kappas = sorted({s["keep_fraction"] for *_, sel in panels for s in sel}, reverse=True)
    colors = {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(all_kappas)}
    for ax, (metric, key, label, sel) in zip(axes, panels):
        kappas = sorted({s["keep_fraction"] for s in sel}, reverse=True)
        for k in kappas:
            line = sorted((s for s in sel if s["keep_fraction"] == k), key=lambda s: s["dataset_size"])
            ax.plot([max(s["dataset_size"], 1) for s in line], [s[key] for s in line], "o-", ms=4,
                    color=colors[k], label=f"κ={k:g}")
        ax.set_xscale("log")
        ax.set_xlabel("examples D (0 drawn at 1)")
        ax.set_ylabel("retention q" if key == "retention" else nice(metric))
        ax.set_title(f"{nice(metric)} · {label}", fontsize=8)
    axes[0].legend(fontsize=7, title="keep fraction")
    return to_svg(fig), None


def fig_schedule(settings, metrics):
    """Iterative vs one-shot: the same supervision · method under each schedule, along κ."""
    schedules = sorted({s["schedule"] for s in settings if not s["teacher"]}, key=str)
    if len(schedules) < 2:
        return None, f"the study ran a single schedule ({', '.join(map(str, schedules)) or 'none'})"
    fig, axes = _grid(len(metrics), cols=2, width=4.8)
    styles = ["-", "--", ":", "-."]
    for ax, (metric, key) in zip(axes, metrics):
        rows = [s for s in settings if s["metric"] == metric and not s["teacher"]]
        pairs = sorted({(s["supervision"], s["method"]) for s in rows}, key=str)
        colors = _colors([f"{a} · {b}" for a, b in pairs])
        for sup, meth in pairs:
            for i, sched in enumerate(schedules):
                sel = [s for s in rows if (s["supervision"], s["method"], s["schedule"]) == (sup, meth, sched)]
                if not sel:
                    continue
                D = max(s["dataset_size"] for s in sel)
                sel = sorted((s for s in sel if s["dataset_size"] == D), key=lambda s: s["keep_fraction"])
                ax.plot([s["keep_fraction"] for s in sel], [s[key] for s in sel], styles[i % 4], marker="o", ms=4,
                        color=colors[f"{sup} · {meth}"], label=f"{sup} · {meth} · {sched} (D={D:g})")
        _kappa_axis(ax)
        ax.set_ylabel("retention q" if key == "retention" else nice(metric))
        ax.set_title(nice(metric))
        ax.legend(fontsize=7)
    return to_svg(fig), None


def fig_pareto(students, front, choice=None):
    """Cost (parameters, latency) vs macro-F1, coloured by GK retention; the frontier ringed."""
    costs = [(c, lab) for c, lab in (("params", "parameters (millions)"), ("latency_ms", "latency per headline (ms)"))
             if any(r.get(c) is not None for r in students)]
    pts = [r for r in students if r.get("task_macro_f1") is not None and not r["teacher"]]
    teacher = [r for r in students if r["teacher"] and r.get("task_macro_f1") is not None]
    if not costs or not pts:
        return None, "no student has both a cost (parameters or latency) and an in-domain macro-F1"
    fig, axes = _grid(len(costs), cols=2, width=4.8, height=3.6)
    on_front = {id(r) for r in front}
    for ax, (cost, label) in zip(axes, costs):
        scale = 1e-6 if cost == "params" else 1.0
        sel = [r for r in pts if r.get(cost) is not None]
        gk = [r["gk_retention"] if r.get("gk_retention") is not None else float("nan") for r in sel]
        sc = ax.scatter([r[cost] * scale for r in sel], [r["task_macro_f1"] for r in sel], c=gk, cmap="viridis",
                        vmin=0, vmax=1, s=36, edgecolors="none")
        ring = [r for r in sel if id(r) in on_front]
        ax.scatter([r[cost] * scale for r in ring], [r["task_macro_f1"] for r in ring], s=110, facecolors="none",
                   edgecolors="black", lw=1.2, label="Pareto frontier")
        if choice is not None and choice.get(cost) is not None:
            ax.plot([choice[cost] * scale], [choice["task_macro_f1"]], "*", ms=16, color="orange",
                    markeredgecolor="black", label="recommended")
        if teacher and teacher[0].get(cost) is not None:
            ax.plot([teacher[0][cost] * scale], [teacher[0]["task_macro_f1"]], "*", ms=12, color="black", label="teacher")
        ax.set_xlabel(label)
        ax.set_ylabel("in-domain macro-F1")
        ax.legend(fontsize=7, loc="lower right")
        fig.colorbar(sc, ax=ax, label="GK retention")
    return to_svg(fig), None
