"""The evaluation report: one self-contained HTML file, and the same tables on the terminal.

Numbers come from the metrics' flat ``{"metric/value/.../target": number}`` results. A
value whose last part names a translation target goes into the per-target table, one
ending in a ``pair/source->target`` into the per-pair table, the rest into the summary;
so a plugin's metric shows up without the report knowing it. Pictures are embedded as
PNG data, the loss curves as SVG drawn from the run's ``log.jsonl``.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image
from rich.console import Console
from rich.table import Table as RichTable

if TYPE_CHECKING:
    from mdt.evaluation import Medium

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def split_results(results: Mapping[str, Any], targets: Sequence[str]) -> tuple[dict, dict, dict]:
    """(summary {key: value}, per target {column: {target: value}}, per pair {column: {pair: value}})."""
    summary: dict[str, Any] = {}
    per_target: dict[str, dict[str, Any]] = {}
    per_pair: dict[str, dict[str, Any]] = {}
    for key, value in results.items():
        head, _, last = key.rpartition("/")
        if "/pair/" in key:
            column, _, pair = key.partition("/pair/")
            per_pair.setdefault(column, {})[pair] = value
        elif head and last in targets:
            per_target.setdefault(head, {})[last] = value
        else:
            summary[key] = value
    return summary, per_target, per_pair


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return str(value)


def side_by_side(models: Mapping[str, Mapping[str, Any]], targets: Sequence[str]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """Tables (caption, header, rows) putting several models' results side by side: the
    summary values, then each per-target value, one column per model."""
    split = {name: split_results(results, targets) for name, results in models.items()}
    keys = list(dict.fromkeys(k for summary, _, _ in split.values() for k in summary))
    tables = [("models side by side", ["value", *models], [[k, *[s[0].get(k, "") for s in split.values()]] for k in keys])]
    columns = list(dict.fromkeys(c for _, per_target, _ in split.values() for c in per_target))
    for column in columns:
        rows = [[t, *[s[1].get(column, {}).get(t, "") for s in split.values()]] for t in targets]
        rows = [row for row in rows if any(cell != "" for cell in row[1:])]
        if rows:
            tables.append((f"{column} per target, side by side", ["target", *models], rows))
    return tables


def print_tables(
    console: Console, results: Mapping[str, Any], targets: Sequence[str], compared: Mapping[str, Mapping[str, Any]] | None = None
) -> None:
    summary, per_target, per_pair = split_results(results, targets)
    table = RichTable("value", "", title="summary")
    for key, value in summary.items():
        table.add_row(key, _format(value))
    console.print(table)
    if per_target:
        _print_wide(console, "target", per_target, list(targets), "per target")
    if per_pair:
        _print_wide(console, "source -> target", per_pair, sorted({p for column in per_pair.values() for p in column}), "per pair")
    for caption, header, rows in side_by_side(compared, targets) if compared else []:
        table = RichTable(*header, title=caption)
        for row in rows:
            table.add_row(*[_format(cell) for cell in row])
        console.print(table)


def _print_wide(console: Console, first: str, columns: Mapping[str, Mapping[str, Any]], rows: Sequence[str], title: str) -> None:
    """``rows`` x ``columns`` as a table, split into tables of whole columns where it is
    wider than the console, each repeating the first column: a narrow terminal shows every
    header and value, where one wide table cut them to "tar..."."""

    def width(texts) -> int:
        return max(len(t) for t in texts) + 3  # a cell's padding and border

    first_width = width([first, *rows])
    chunks: list[list[str]] = [[]]
    used = first_width
    for name, column in columns.items():
        needed = width([name, *(_format(column.get(r, "")) for r in rows)])
        if chunks[-1] and used + needed > console.width:
            chunks.append([])
            used = first_width
        chunks[-1].append(name)
        used += needed
    for k, names in enumerate(chunks):
        table = RichTable(first, *names, title=title if len(chunks) == 1 else f"{title} ({k + 1} of {len(chunks)})")
        for row in rows:
            cells = [_format(columns[n].get(row, "")) for n in names]
            if any(cell != "" for cell in cells):
                table.add_row(row, *cells)
        console.print(table)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str, kind: str = "") -> str:
    """A table in a box that scrolls sideways where the table is wider than the window."""
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_format(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table class="{kind}"><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _summary_rows(summary: Mapping[str, Any], described: Mapping[str, tuple[str, str, str]]) -> list[list[Any]]:
    """Each summary value, whether more or less of it is better, and what it means (with
    where the docs explain it), as its metric describes it."""
    rows = []
    for key, value in summary.items():
        better, meaning, docs = described.get(key, ("", "", ""))
        rows.append([key, value, better, f"{meaning} ({docs})" if meaning and docs else meaning])
    return rows


def _column_title(column: str, keys: Sequence[str], described: Mapping[str, tuple[str, str, str]]) -> str:
    """A per-target column's title, with the better direction its values' metric gives."""
    better = next((described[k][0] for k in keys if k in described and described[k][0]), "")
    return f"{column} ({better} is better)" if better else column


def _png_data(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _medium_html(medium: Medium) -> str:
    source = f"data:{medium.mime};base64," + base64.b64encode(medium.data).decode("ascii")
    title = html.escape(medium.title)
    kind = medium.mime.split("/", 1)[0]
    if kind in ("audio", "video"):
        return f'<div class="medium"><div>{title}</div><{kind} controls preload="none" src="{source}"></{kind}></div>'
    if kind == "image":
        return f'<div class="medium"><div>{title}</div><img src="{source}" alt="{title}"></div>'
    return f'<div class="medium"><a download="{title}" href="{source}">{title}</a></div>'


def _media_html(caption: str, files: Sequence[Medium]) -> str:
    """One figure of files side by side (a conversion between its source and its target)."""
    return f'<figure><div class="media">{"".join(_medium_html(m) for m in files)}</div><figcaption>{html.escape(caption)}</figcaption></figure>'


def loss_series(records: Sequence[Mapping[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Per logged loss, its (step, value) points: each update's ``/total`` where the
    method logs them, else every loss; not rates, counters or weights."""
    train = [r for r in records if r.get("event") == "train"]
    keys = [k for k in (train[0] if train else {}) if "/" in k and not k.startswith(("weight/", "lr/"))]
    totals = [k for k in keys if k.endswith("/total")]
    if totals:
        keys = totals
    else:
        depth = min((k.count("/") for k in keys), default=0)
        keys = [k for k in keys if k.count("/") == depth]
    series: dict[str, list[tuple[int, float]]] = {k: [] for k in keys}
    for record in train:
        for key in keys:
            value = record.get(key)
            if isinstance(value, (int, float)) and math.isfinite(value):
                series[key].append((int(record["step"]), float(value)))
    return {k: v for k, v in series.items() if v}


def svg_plot(series: Mapping[str, Sequence[tuple[int, float]]], width: int = 420, height: int = 220) -> str:
    """Lines of (step, value) points with labelled axes, as inline SVG."""
    points = [p for line in series.values() for p in line]
    if not points:
        return "<p>no training losses in the log</p>"
    left, right, top, bottom = 60, 10, 10, 30
    x0, x1 = min(p[0] for p in points), max(p[0] for p in points)
    y0, y1 = min(p[1] for p in points), max(p[1] for p in points)
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1)

    def sx(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def sy(y: float) -> float:
        return top + (y1 - y) / (y1 - y0) * (height - top - bottom)

    parts = [
        f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}">',
        f'<rect x="{left}" y="{top}" width="{width - left - right}" height="{height - top - bottom}" fill="none" stroke="#999"/>',
    ]
    for value, y in ((y0, sy(y0)), (y1, sy(y1)), ((y0 + y1) / 2, sy((y0 + y1) / 2))):
        parts.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value:.3g}</text>')
    for value, anchor in ((x0, "start"), (x1, "end")):  # inside the plot, never cut at its edges
        parts.append(f'<text x="{sx(value):.1f}" y="{height - 10}" text-anchor="{anchor}" font-size="11">step {value}</text>')
    legend = []
    for i, (name, line) in enumerate(series.items()):
        colour = COLOURS[i % len(COLOURS)]
        coordinates = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in line)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coordinates}"><title>{html.escape(name)}</title></polyline>'
        )
        if len(line) <= 2:  # too few points for a visible line
            parts.extend(f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{colour}"/>' for x, y in line)
        legend.append(f'<span style="color:{colour}">&#9632; {html.escape(name)}</span>')
    parts.append("</svg>")
    return "".join(parts) + '<div class="legend">' + " ".join(legend) + "</div>"


def write_html(
    path: Path,
    title: str,
    about: Mapping[str, Any],
    results: Mapping[str, Any],
    targets: Sequence[str],
    figures: Mapping[str, Image.Image],
    log_records: Sequence[Mapping[str, Any]],
    compared: Mapping[str, Mapping[str, Any]] | None = None,
    described: Mapping[str, tuple[str, str, str]] | None = None,
    media: Mapping[str, Sequence[Medium]] | None = None,
) -> Path:
    """A report that needs nothing beside it: tables, grids, the loss curves and ``media``
    (caption -> files: sound with a player, pictures shown, anything else linked); with
    ``compared`` (model name -> results, the first the report's own), tables of the
    models side by side first. ``described``: each result's (better, meaning, docs), as
    :func:`mdt.evaluation.describe_results` gives them, beside its value and in column titles."""
    described = described or {}
    summary, per_target, per_pair = split_results(results, targets)
    sections = [f"<h1>{html.escape(title)}</h1>", _html_table(["", ""], list(about.items()), "model and evaluation")]
    for caption, header, rows in side_by_side(compared, targets) if compared else []:
        sections.append(_html_table(header, rows, caption))
    sections.append(_html_table(["value", "", "better", "what it is"], _summary_rows(summary, described), "summary", "summary"))
    if per_target:
        rows = [[t, *[column.get(t, "") for column in per_target.values()]] for t in targets if any(t in c for c in per_target.values())]
        titles = [_column_title(c, [f"{c}/{t}" for t in targets], described) for c in per_target]
        sections.append(_html_table(["target", *titles], rows, "per target domain"))
    if per_pair:
        pairs = sorted({p for column in per_pair.values() for p in column})
        sections.append(
            _html_table(
                ["source -> target", *per_pair],
                [[p, *[c.get(p, "") for c in per_pair.values()]] for p in pairs],
                "per source -> target pair",
            )
        )
    series = loss_series(log_records)  # one plot per loss: their scales differ
    plots = (
        "".join(f'<div class="chart">{svg_plot({name: line})}</div>' for name, line in series.items())
        or "<p>no training losses in the run's log</p>"
    )
    sections.append(f'<h2>Training losses</h2><div class="charts">{plots}</div>')
    for caption, image in figures.items():
        sections.append(
            f'<figure><img src="{_png_data(image)}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'
        )
    sections += [_media_html(caption, files) for caption, files in (media or {}).items()]
    style = (
        "body{font-family:sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;margin:1em 0}"
        ".wide{max-width:100%;overflow-x:auto}.summary td:nth-child(4){min-width:24em}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}caption{font-weight:bold;text-align:left}"
        "img{image-rendering:pixelated;max-width:100%;min-width:480px}.legend span{margin-right:1em}"
        ".charts,.media{display:flex;flex-wrap:wrap;gap:1em}"
    )
    document = f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{style}</style></head><body>{"".join(sections)}</body></html>'
    path.write_text(document, encoding="utf-8")
    return path
