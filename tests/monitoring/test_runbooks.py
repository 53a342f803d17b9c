"""Every alert in monitoring/ has a runbook in docs/OPERATIONS.md: a section that names it on its
"Alert(s):" line, and a row of the alerts table linking to a section that exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).parents[2]


def _alert_names() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "monitoring").rglob("*.yml"):
        if path.name.endswith(".test.yml"):
            continue
        data = yaml.safe_load(path.read_text())
        if not isinstance(data, dict):
            continue
        for group in data.get("groups") or []:
            for rule in group.get("rules") or []:
                if isinstance(rule, dict) and "alert" in rule:
                    names.add(str(rule["alert"]))
    return names


def _sections(text: str) -> dict[str, str]:
    """Runbook sections: '### title' -> body."""
    parts = re.split(r"^### (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts) - 1, 2)}


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")


def test_every_alert_has_a_runbook_section_and_a_table_row_linking_to_it() -> None:
    text = (ROOT / "docs" / "OPERATIONS.md").read_text()
    sections = _sections(text)
    anchors = {_anchor(t) for t in sections}
    alerts = _alert_names()
    assert len(alerts) >= 12, alerts  # the rules were found
    missing_section, missing_row = [], []
    for name in sorted(alerts):
        named = [t for t, body in sections.items() if re.search(rf"^Alerts?: .*`{name}[`{{]", body, flags=re.M | re.S)]
        if not named:
            missing_section.append(name)
        row = re.search(rf"^\| `{name}` \|.*\| \[[^\]]+\]\(#([a-z0-9-]+)\) \|$", text, flags=re.M)
        if row is None or row.group(1) not in anchors:
            missing_row.append(name)
    assert not missing_section, f"alerts without a runbook section naming them: {missing_section}"
    assert not missing_row, f"alerts without a table row linking to an existing runbook: {missing_row}"
