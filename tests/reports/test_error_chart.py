"""The PDF report's "error share per week" chart when the only judged characters are in the
current week (the tester's empty chart): each week is drawn over its days, the axis reaches the
end of the last week, and the whole PDF renders (pdftoppm: the chart area is not blank)."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from vocalborn.reports.data import Report, WeekRow


def _report(first: date, last: date) -> Report:
    monday = first - timedelta(days=first.weekday())
    weeks = []
    while monday <= last:
        weeks.append(WeekRow(monday))
        monday += timedelta(days=7)
    weeks[-1].verdicts = Counter({"none": 6, "tone": 3, "omission": 1})  # the current week only
    return Report(
        learner_id=uuid.uuid4(), learner_name="Lin", first_day=first, last_day=last,
        generated_at=datetime.now(UTC), weeks=weeks, attempts=[], characters=[], tone_matrix={},
        reviews=[], has_targets=False,
    )  # fmt: skip


def test_errors_only_in_the_current_week_draw_a_segment_inside_the_axis() -> None:
    from reportlab.graphics.charts.lineplots import LinePlot

    from vocalborn.reports.pdf import _error_chart

    last = date(2026, 12, 7)  # a Monday: the current week has begun today
    report = _report(last - timedelta(days=27), last)
    drawing = _error_chart(report, "en")
    [plot] = [c for c in drawing.contents if isinstance(c, LinePlot)]
    tone = [s for s in plot.data if any(v == 30.0 for _, v in s)]
    assert tone, plot.data
    [(x0, _), (x1, _)] = tone[0]
    assert x1 - x0 == 7.0  # the whole week, not a lone point (which draws nothing)
    assert plot.xValueAxis.valueMin <= x0 and x1 <= plot.xValueAxis.valueMax  # inside the axis
    assert plot.xValueAxis.valueMax >= (last + timedelta(days=6) - report.first_day).days


def test_the_pdf_with_only_this_weeks_errors_renders_the_chart(tmp_path: Path) -> None:
    from vocalborn.reports.pdf import render_pdf
    from vocalborn.reports.texts import text as report_text

    assert shutil.which("pdftoppm"), "poppler-utils is needed (.ci/run installs it)"
    last = date(2026, 12, 9)
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render_pdf(_report(last - timedelta(days=20), last), "zh-TW"))
    subprocess.run(["pdftotext", str(pdf), str(tmp_path / "r.txt")], check=True)
    text = (tmp_path / "r.txt").read_text()
    assert "12-" in text  # the axis' dates are drawn
    assert report_text("no_characters", "zh-TW") not in text  # the chart, not "no characters judged"
