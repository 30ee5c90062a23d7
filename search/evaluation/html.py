"""The final evaluation's report: a self-contained plotly HTML page."""

from __future__ import annotations

import html

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from search.evaluation.result import EvalResult
from search.evaluation.text import budget_line, gain, model_line


def learning_curves(result: EvalResult) -> go.Figure:
    fig = make_subplots(rows=1, cols=2, subplot_titles=("train loss", "test accuracy"))
    for i, name in enumerate(result.variants):
        runs = [r.epochs for r in result.runs(name)]
        color = f"hsl({(i * 67) % 360},60%,45%)"
        for col, key in ((1, "train_loss"), (2, "test_accuracy")):
            epochs = [e["epoch"] for e in runs[0]]
            values = [[run[j][key] for run in runs] for j in range(len(epochs))]
            mean = [sum(v) / len(v) for v in values]
            std = [
                (sum((x - m) ** 2 for x in v) / max(1, len(v) - 1)) ** 0.5
                for v, m in zip(values, mean, strict=True)
            ]
            upper = [m + s for m, s in zip(mean, std, strict=True)]
            lower = [m - s for m, s in zip(mean, std, strict=True)]
            fig.add_trace(
                go.Scatter(
                    x=epochs + epochs[::-1],
                    y=upper + lower[::-1],
                    fill="toself",
                    line={"width": 0},
                    fillcolor=color,
                    opacity=0.15,
                    showlegend=False,
                    hoverinfo="skip",
                ),
                row=1,
                col=col,
            )
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=mean,
                    name=name,
                    line={"color": color},
                    legendgroup=name,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title="Mean learning curves over rounds (band: +- 1 std)", height=450)
    return fig


def accuracy_plot(result: EvalResult) -> go.Figure:
    fig = go.Figure()
    for name in result.variants:
        acc = [100 * r.test_accuracy for r in result.runs(name)]
        fig.add_trace(go.Box(y=acc, name=name, boxpoints="all", jitter=0.4, pointpos=0))
    fig.update_layout(
        title="Test accuracy per variant, one point per round",
        yaxis_title="test accuracy (%)",
        height=450,
        showlegend=False,
    )
    return fig


def tradeoff_plot(result: EvalResult) -> go.Figure:
    """Validation accuracy against one net's parameter count, one point per complete search
    trial; the front (no other trial beats it on both) joined; the budget as a line and the
    trials over it, never trained, as marks along the bottom."""
    fig = go.Figure()
    found, front = result.points, result.front
    budget = result.max_params
    feasible = [p for p in found if p.feasible]
    fig.add_trace(
        go.Scatter(
            x=[p.params for p in feasible],
            y=[100 * p.value for p in feasible],
            mode="markers",
            name="within the budget" if budget else "search trial",
            text=[f"trial #{p.trial}" for p in feasible],
            marker={"color": "hsl(210,60%,45%)", "opacity": 0.6},
        )
    )
    fig.add_trace(
        go.Scatter(
            x=[p.params for p in front],
            y=[100 * p.value for p in front],
            mode="lines+markers",
            line_shape="hv",
            name="front",
            text=[f"trial #{p.trial}" for p in front],
            marker={"color": "hsl(10,70%,45%)", "size": 9},
        )
    )
    if budget is not None:
        low = min((100 * p.value for p in found), default=50.0)
        fig.add_trace(
            go.Scatter(
                x=result.over_budget,
                y=[low] * len(result.over_budget),
                mode="markers",
                name="over the budget (never trained)",
                marker={"symbol": "x", "color": "grey"},
            )
        )
        fig.add_vline(x=budget, line_dash="dash", annotation_text=f"budget {budget:,}")
    fig.update_xaxes(type="log", title_text="parameters (one net)")
    fig.update_layout(
        title="Search trials: validation accuracy against size", yaxis_title="validation %",
        height=450,
    )  # fmt: skip
    return fig


def front_rows(result: EvalResult) -> str:
    return "".join(
        f"<tr><td>#{p.trial}</td><td>{p.params:,}</td><td>{100 * p.value:.2f}</td></tr>"
        for p in result.front
    )


def html_page(result: EvalResult) -> str:
    """The whole report as one HTML page with plotly.js embedded (no network needed)."""
    box = accuracy_plot(result).to_html(full_html=False, include_plotlyjs=True)
    curves = learning_curves(result).to_html(full_html=False, include_plotlyjs=False)
    sizes = tradeoff_plot(result).to_html(full_html=False, include_plotlyjs=False)
    budget = budget_line(result)
    table_rows = "".join(
        f"<tr><td>{html.escape(name)}</td><td>{100 * s.test.mean:.2f} +- "
        f"{100 * s.test.std:.2f}</td><td>[{100 * s.test.low:.2f}, "
        f"{100 * s.test.high:.2f}]</td><td>{100 * s.train.mean:.2f}</td></tr>"
        for name, s in result.summary.items()
    )
    config_rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(str(v))}</td></tr>"
        for k, v in result.config.to_dict().items()
    )
    study = html.escape(result.study)
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Final evaluation: {study}</title>
<style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 10px;text-align:left}}</style>
</head><body>
<h1>Final evaluation of study {study}, trial #{result.trial}</h1>
<p>{len(result.round_seeds)} rounds, seed {result.seed}; each round draws new training and
test pairs and a new initialization. Test accuracy in %.</p>
<p>Selection: {html.escape(result.selection)}.</p>
<p><b>{html.escape(gain(result))}</b></p>
<table><tr><th>variant</th><th>test mean +- std</th><th>95% interval</th><th>train mean</th></tr>
{table_rows}</table>
{box}
{curves}
<h2>Selected configuration</h2><table>{config_rows}</table>
<h2>Model file</h2><p>{html.escape(model_line(result))}</p>
<h2>Accuracy against size</h2>
{f"<p>{html.escape(budget)}.</p>" if budget else ""}
{sizes}
<p>The front: search trials that no other trial beats on both validation accuracy and size.</p>
<table><tr><th>trial</th><th>parameters</th><th>validation %</th></tr>{front_rows(result)}</table>
</body></html>
"""
