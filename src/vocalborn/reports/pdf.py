"""The clinical report as PDF, drawn with reportlab (its own charts; no browser, no network).

reportlab is imported here only, and this module only when a PDF is asked for (the router imports
it inside the request): it takes ~0.2 s and ~15 MiB to import, which every API process and worker
would otherwise pay at start for a report few callers ask for.

Text is set in WenQuanYi Micro Hei (bundled under ``fonts/``, Apache-2.0; Latin and CJK in one
face), embedded as a subset: the sentences' Chinese is legible in any viewer, whatever fonts the
reader's machine has.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from reportlab.graphics.charts.barcharts import VerticalBarChart
from reportlab.graphics.charts.legends import Legend
from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Table, TableStyle

from vocalborn.i18n import Language, count_en
from vocalborn.learning.models import SCORE_FIELDS
from vocalborn.reports.data import TONES, Report
from vocalborn.reports.texts import text

FONT = "VocalBornSans"
FONT_FILE = Path(__file__).with_name("fonts") / "wqy-microhei.ttc"
SCORE_COLOURS = (colors.HexColor("#1f77b4"), colors.HexColor("#2ca02c"), colors.HexColor("#ff7f0e"),
                 colors.HexColor("#9467bd"))  # fmt: skip
ERROR_COLOURS = {"tone": colors.HexColor("#d4a017"), "mispronunciation": colors.HexColor("#c0392b"),
                 "omission": colors.HexColor("#7f8c8d")}  # fmt: skip
MAX_CHARACTER_ROWS = 25
WIDTH = A4[0] - 30 * mm


@lru_cache(maxsize=1)
def _font() -> str:
    """Register the bundled face once per process (~0.1 s)."""
    pdfmetrics.registerFont(TTFont(FONT, str(FONT_FILE), subfontIndex=0))
    return FONT


def _styles() -> dict[str, ParagraphStyle]:
    font = _font()
    return {
        "title": ParagraphStyle("title", fontName=font, fontSize=17, leading=22, spaceAfter=4),
        "h2": ParagraphStyle(
            "h2",
            fontName=font,
            fontSize=12.5,
            leading=17,
            spaceBefore=10,
            spaceAfter=4,
            textColor=colors.HexColor("#1a3d5c"),
        ),  # fmt: skip
        "body": ParagraphStyle("body", fontName=font, fontSize=9.5, leading=13),
        "small": ParagraphStyle("small", fontName=font, fontSize=8, leading=10.5, textColor=colors.HexColor("#444")),
        "cell": ParagraphStyle("cell", fontName=font, fontSize=8.5, leading=11),
    }


def _num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _table(
    rows: list[list[Any]], widths: list[float] | None = None, align_right_from: int = 1, align_right_to: int = -1
) -> Table:
    table = Table(rows, colWidths=widths, repeatRows=1)
    table.setStyle(
        TableStyle(
            [
                ("FONT", (0, 0), (-1, -1), _font(), 8.5),
                ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8eef4")),
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, colors.HexColor("#1a3d5c")),
                ("ROWBACKGROUNDS", (0, 1), (-1, -1), [colors.white, colors.HexColor("#f7f7f7")]),
                ("ALIGN", (align_right_from, 0), (align_right_to, -1), "RIGHT"),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return table


def _legend(x: float, y: float, pairs: list[tuple[Any, str]]) -> Legend:
    legend = Legend()
    legend.x, legend.y = x, y
    legend.fontName, legend.fontSize = _font(), 8
    legend.alignment = "right"
    legend.columnMaximum = 1
    legend.deltax = 95
    legend.dxTextSpace = 4
    legend.colorNamePairs = pairs
    return legend


def _date_axis(plot: LinePlot, first: date, last: date) -> None:
    span = max(1, (last - first).days)
    plot.xValueAxis.valueMin = 0
    plot.xValueAxis.valueMax = span + 1
    step = max(1, round(span / 6))
    plot.xValueAxis.valueSteps = list(range(0, span + 1, step))
    plot.xValueAxis.labelTextFormat = lambda v: (first.fromordinal(first.toordinal() + int(v))).strftime("%m-%d")
    plot.xValueAxis.labels.fontName = _font()
    plot.xValueAxis.labels.fontSize = 7.5


def _score_chart(report: Report, lang: Language) -> Drawing:
    drawing = Drawing(WIDTH, 185)
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 32, 38, WIDTH - 45, 135
    first = report.first_day
    series = []
    for field in SCORE_FIELDS:
        series.append(
            [
                ((a.at.date() - first).days + a.at.hour / 24.0, float(a.scores[field] or 0.0))
                for a in report.counted
                if a.scores[field] is not None
            ]  # fmt: skip
        )
    if not any(series):
        drawing.add(
            String(WIDTH / 2, 95, text("no_attempts", lang), fontName=_font(), fontSize=10, textAnchor="middle")
        )
        return drawing
    plot.data = [s or [(0.0, 0.0)] for s in series]
    for i, colour in enumerate(SCORE_COLOURS):
        plot.lines[i].strokeColor = colour
        plot.lines[i].strokeWidth = 1.1 if i == 0 else 0.6
        if not series[i]:
            plot.lines[i].strokeColor = colors.transparent
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax, plot.yValueAxis.valueStep = 0, 100, 20
    plot.yValueAxis.labels.fontName, plot.yValueAxis.labels.fontSize = _font(), 7.5
    _date_axis(plot, first, report.last_day)
    drawing.add(plot)
    pairs = [(c, text(f, lang)) for c, f in zip(SCORE_COLOURS, SCORE_FIELDS, strict=True)]
    drawing.add(_legend(40, 12, pairs))
    return drawing


def _weekly_chart(report: Report, lang: Language) -> Drawing:
    drawing = Drawing(WIDTH, 150)
    chart = VerticalBarChart()
    chart.x, chart.y, chart.width, chart.height = 32, 32, WIDTH - 45, 105
    chart.data = [[w.attempts for w in report.weeks], [w.minutes for w in report.weeks]]
    chart.bars[0].fillColor = colors.HexColor("#1f77b4")
    chart.bars[1].fillColor = colors.HexColor("#aec7e8")
    chart.valueAxis.valueMin = 0
    chart.valueAxis.labels.fontName, chart.valueAxis.labels.fontSize = _font(), 7.5
    every = max(1, len(report.weeks) // 12)
    chart.categoryAxis.categoryNames = [
        w.week_start.strftime("%m-%d") if i % every == 0 else "" for i, w in enumerate(report.weeks)
    ]
    chart.categoryAxis.labels.fontName, chart.categoryAxis.labels.fontSize = _font(), 7.5
    chart.barSpacing, chart.groupSpacing = 1, 4
    drawing.add(chart)
    pairs = [(colors.HexColor("#1f77b4"), text("attempts", lang)), (colors.HexColor("#aec7e8"), text("minutes", lang))]
    drawing.add(_legend(40, 8, pairs))
    return drawing


def _error_chart(report: Report, lang: Language) -> Drawing:
    drawing = Drawing(WIDTH, 160)
    plot = LinePlot()
    plot.x, plot.y, plot.width, plot.height = 32, 38, WIDTH - 45, 110
    first = report.first_day
    data = []
    # Each week is drawn over its days, from its Monday (or the report's first day) to the next
    # Monday: a week alone (the current one, say) is a segment, not a lone point that draws nothing,
    # and the axis runs to the end of the report's last week (not its first day).
    for kind in ERROR_COLOURS:
        points = []
        for w in report.weeks:
            judged = sum(w.verdicts.values())
            if judged:
                share = round(100.0 * w.verdicts[kind] / judged, 1)
                start = float((max(w.week_start, first) - first).days)
                end = float((w.week_start + timedelta(days=7) - first).days)
                points += [(start, share), (end, share)]
        data.append(points)
    if not any(data):
        drawing.add(
            String(WIDTH / 2, 80, text("no_characters", lang), fontName=_font(), fontSize=10, textAnchor="middle")
        )
        return drawing
    plot.data = data
    for i, colour in enumerate(ERROR_COLOURS.values()):
        plot.lines[i].strokeColor = colour
        plot.lines[i].strokeWidth = 1.2
        plot.lines[i].symbol = None
    top = max(v for s in data for _, v in s)
    plot.yValueAxis.valueMin, plot.yValueAxis.valueMax = 0, max(10, min(100, int(top / 10 + 1) * 10))
    plot.yValueAxis.labels.fontName, plot.yValueAxis.labels.fontSize = _font(), 7.5
    plot.yValueAxis.labelTextFormat = "%d%%"
    last_week_end = report.weeks[-1].week_start + timedelta(days=6) if report.weeks else report.last_day
    _date_axis(plot, first, max(report.last_day, last_week_end))
    drawing.add(plot)
    drawing.add(_legend(40, 12, [(c, text(k, lang)) for k, c in ERROR_COLOURS.items()]))
    return drawing


def summary(report: Report, lang: Language) -> str:
    """The report's first line: counts, with English nouns in the right number (1 attempt)."""
    counted = report.counted
    days = len({a.asked_at.date() for a in counted})
    return text("summary", lang).format(
        counted=len(counted),
        not_counted=len(report.attempts) - len(counted),
        minutes=round(sum(a.duration_seconds for a in counted) / 60.0, 1),
        days=days,
        days_en=count_en(days, "day"),
        reviews=len(report.reviews),
        reviews_en=count_en(len(report.reviews), "therapist review"),
    )


def render_pdf(report: Report, lang: Language) -> bytes:
    styles = _styles()
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=14 * mm, bottomMargin=14 * mm,
        title=text("title", lang), author="VocalBorn", subject=report.learner_name,
    )  # fmt: skip
    p = Paragraph
    story: list[Any] = [
        p(escape(text("title", lang)), styles["title"]),
        p(escape(f"{text('learner', lang)}: {report.learner_name}"), styles["body"]),
        p(
            escape(f"{text('range', lang)}: {report.first_day.isoformat()} – {report.last_day.isoformat()}"),
            styles["body"],
        ),  # fmt: skip
        p(
            escape(summary(report, lang)),
            styles["body"],
        ),  # fmt: skip
        p(escape(text("counting_note", lang)), styles["small"]),
    ]
    # weeks
    rows: list[list[Any]] = [[text(k, lang) for k in ("week", "attempts", "not_counted", "minutes", "days", "dose")]]
    for w in report.weeks:
        rows.append([w.week_start.isoformat(), w.attempts, w.not_counted, _num(w.minutes), len(w.days),
                     "–" if w.dose_met_percent is None else f"{w.dose_met_percent:.0f}%"])  # fmt: skip
    story += [p(escape(text("weeks_heading", lang)), styles["h2"]), _weekly_chart(report, lang), _table(rows)]
    if not report.has_targets:
        story.append(p(escape(text("no_targets", lang)), styles["small"]))
    # scores on dates
    story += [KeepTogether([p(escape(text("scores_heading", lang)), styles["h2"]), _score_chart(report, lang)])]
    # errors over time, characters, tones
    story += [KeepTogether([p(escape(text("errors_heading", lang)), styles["h2"]), _error_chart(report, lang)])]
    story.append(p(escape(text("characters_heading", lang)), styles["h2"]))
    weeks = [w.week_start for w in report.weeks if sum(w.verdicts.values())]
    head = [text(k, lang) for k in ("character", "pinyin", "judged", "errors", "tone", "mispronunciation",
                                     "omission", "first_week", "last_week")]  # fmt: skip
    rows = [head]
    for c in [c for c in report.characters if c.error_count][:MAX_CHARACTER_ROWS]:
        seen = [d for d in weeks if d in c.by_week]
        first_w = c.by_week[seen[0]] if seen else [0, 0]
        last_w = c.by_week[seen[-1]] if seen else [0, 0]
        rows.append([c.char, c.pinyin or "", c.judged, c.error_count, c.errors["tone"], c.errors["mispronunciation"],
                     c.errors["omission"], f"{first_w[1]}/{first_w[0]}", f"{last_w[1]}/{last_w[0]}"])  # fmt: skip
    if len(rows) == 1:
        story.append(p(escape(text("no_character_errors", lang)), styles["body"]))
    else:
        story.append(_table(rows, align_right_from=2))
        story.append(p(escape(text("characters_note", lang)), styles["small"]))
    story.append(p(escape(text("tones_heading", lang)), styles["h2"]))
    matrix: list[list[Any]] = [[text("expected_heard", lang), *(str(t) for t in TONES), "?"]]
    for expected in TONES:
        matrix.append([str(expected), *(report.tone_matrix.get((expected, h), 0) for h in (*TONES, None))])
    tone_table = _table(matrix, widths=[38 * mm] + [14 * mm] * 6)
    tone_table.setStyle(TableStyle(
        [("BACKGROUND", (i + 1, i + 1), (i + 1, i + 1), colors.HexColor("#d9f0d9")) for i in range(len(TONES))]
    ))  # fmt: skip
    story += [tone_table, p(escape(text("tones_note", lang)), styles["small"])]
    # sentences
    story.append(p(escape(text("sentences_heading", lang)), styles["h2"]))
    rows = [[text(k, lang) for k in ("sentence", "attempts", "not_counted", "first_score", "last_score")]]
    for s in report.sentences():
        rows.append([p(escape(s["text"]), styles["cell"]), s["attempts"], s["not_counted"], _num(s["first"], 0),
                     _num(s["last_mean"], 0)])  # fmt: skip
    story.append(_table(rows, widths=[WIDTH - 88 * mm, 22 * mm, 22 * mm, 22 * mm, 22 * mm]))
    # reviews
    story.append(p(escape(text("reviews_heading", lang)), styles["h2"]))
    if not report.reviews:
        story.append(p(escape(text("no_reviews", lang)), styles["body"]))
    else:
        rows = [[text(k, lang) for k in ("date", "sentence", "therapist", "therapist_score", "engine_score",
                                         "marked", "comment")]]  # fmt: skip
        for r in report.reviews:
            rows.append([
                r.at.date().isoformat(), p(escape(r.sentence_text), styles["cell"]), p(escape(r.therapist_name),
                styles["cell"]), _num(r.scores["overall_score"], 0), _num(r.engine_overall, 0),
                p(escape(" ".join(r.characters)), styles["cell"]), p(escape(r.comment or ""), styles["cell"]),
            ])  # fmt: skip
        widths = [20 * mm, 40 * mm, 24 * mm, 18 * mm, 18 * mm, 18 * mm, WIDTH - 138 * mm]
        story.append(_table(rows, widths=widths, align_right_from=3, align_right_to=4))
    generated = report.generated_at.strftime("%Y-%m-%d %H:%M UTC")

    def footer(canvas: Any, document: Any) -> None:
        canvas.saveState()
        canvas.setFont(_font(), 7.5)
        canvas.setFillColor(colors.HexColor("#666666"))
        canvas.drawString(15 * mm, 8 * mm, f"VocalBorn · {report.learner_name} · {generated}")
        canvas.drawRightString(A4[0] - 15 * mm, 8 * mm, text("page", lang).format(n=document.page))
        canvas.restoreState()

    doc.build(story, onFirstPage=footer, onLaterPages=footer)
    return buf.getvalue()
