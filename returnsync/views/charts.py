"""Small server-side SVG charts: no JavaScript, no library, readable without colour
(each bar carries a <title> with its value, and the page lists the figures too)."""

from __future__ import annotations

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

WIDTH, HEIGHT, PAD_BOTTOM, PAD_TOP = 640, 180, 28, 10


def bar_pairs_svg(
    rows: list[tuple[str, int, int]], *, legend: tuple[str, str], title: str
) -> SafeString:
    """Grouped bars, two per label (e.g. opened vs resolved per day)."""
    if not rows:
        return SafeString("")
    largest = max(max(a, b) for _, a, b in rows) or 1
    slot = WIDTH / len(rows)
    bar = max(slot * 0.35, 1)
    plot = HEIGHT - PAD_BOTTOM - PAD_TOP

    def bars():
        for i, (label, first, second) in enumerate(rows):
            x = i * slot + slot * 0.12
            for j, (value, css, name) in enumerate(
                ((first, "chart-a", legend[0]), (second, "chart-b", legend[1]))
            ):
                h = plot * value / largest
                yield (
                    css,
                    f"{x + j * bar:.1f}",
                    f"{PAD_TOP + plot - h:.1f}",
                    f"{bar:.1f}",
                    f"{h:.1f}",
                    f"{label}: {value} {name.lower()}",
                )

    labels = format_html_join(
        "",
        '<text x="{}" y="{}" class="chart-label">{}</text>',
        (
            (f"{i * slot + slot / 2:.1f}", HEIGHT - 8, label)
            for i, (label, _, _) in enumerate(rows)
            if len(rows) <= 8 or i % 2 == 0
        ),
    )
    return format_html(
        '<svg class="chart" viewBox="0 0 {} {}" role="img" aria-label="{}">'
        "<title>{}</title>{}{}"
        '<text x="4" y="{}" class="chart-label chart-max">max {}</text></svg>'
        '<p class="chart-legend"><span class="swatch chart-a"></span> {} '
        '<span class="swatch chart-b"></span> {}</p>',
        WIDTH,
        HEIGHT,
        title,
        title,
        format_html_join(
            "",
            '<rect class="{}" x="{}" y="{}" width="{}" height="{}"><title>{}</title></rect>',
            bars(),
        ),
        labels,
        PAD_TOP + 2,
        largest,
        legend[0],
        legend[1],
    )
