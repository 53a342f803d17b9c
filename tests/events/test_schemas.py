"""The event contract: a JSON Schema per type and version that the messages satisfy, no schema
changed incompatibly without a version bump (against the committed snapshots in
tests/events/schema-snapshots/), and the schemas, GET /asyncapi.json and docs/EVENTS.md agree."""

from __future__ import annotations

import copy
import json
import re
import uuid
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from tests.support import Api
from vocalborn.events.catalogue import CATALOGUE, SCHEMA_DIR, message
from vocalborn.events.contract import asyncapi, breaking_changes, schemas
from vocalborn.sqltypes import utcnow

ROOT = Path(__file__).resolve().parents[2]
SNAPSHOTS = Path(__file__).parent / "schema-snapshots"


def validate(body: dict[str, Any]) -> None:
    """``body`` satisfies its type's schema (formats checked) and holds nothing the schema lacks."""
    schema = schemas()[(body["type"], body["schema_version"])]
    jsonschema.validate(body, schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    assert set(body) <= set(schema["properties"]), body
    assert set(body["subject"]) <= set(schema["properties"]["subject"]["properties"]), body
    for value in body["subject"].values():
        uuid.UUID(value)  # ids only


def _sample(name: str) -> dict[str, Any]:
    kind = CATALOGUE[name]
    return message(str(uuid.uuid4()), name, kind.version, utcnow(), {k: uuid.uuid4() for k in kind.subject})


def test_every_type_has_a_valid_schema_of_its_current_version() -> None:
    for name, kind in CATALOGUE.items():
        schema = schemas().get((name, kind.version))
        assert schema is not None, f"no {SCHEMA_DIR.name}/{name}.v{kind.version}.json"
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["properties"]["type"]["const"] == name
        assert schema["properties"]["schema_version"]["const"] == kind.version
        assert schema["properties"]["subject"]["required"] == list(kind.subject)
    assert {name for name, _ in schemas()} == set(CATALOGUE), "a schema file for an unknown type"


@pytest.mark.parametrize("name", sorted(CATALOGUE))
def test_the_message_of_each_type_satisfies_its_schema(name: str) -> None:
    body = _sample(name)
    validate(body)
    broken = copy.deepcopy(body)
    del broken["subject"][CATALOGUE[name].subject[0]]
    with pytest.raises(jsonschema.ValidationError):
        validate(broken)
    with pytest.raises(jsonschema.ValidationError):
        validate({**body, "occurred_at": "yesterday"})


def test_no_schema_changed_incompatibly_without_a_new_version() -> None:
    snapshots = {p.name: json.loads(p.read_text()) for p in SNAPSHOTS.glob("*.json")}
    current = {p.name: json.loads(p.read_text()) for p in SCHEMA_DIR.glob("*.json")}
    missing = sorted(set(snapshots) - set(current))
    assert not missing, f"published schema versions were removed: {missing}"
    new = sorted(set(current) - set(snapshots))
    assert not new, f"new schema versions {new}: copy them to {SNAPSHOTS.relative_to(ROOT)}/ once reviewed"
    problems = {name: breaking_changes(snapshots[name], current[name]) for name in snapshots}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, f"breaking changes need a new version (<type>.v<N+1>.json): {problems}"


def test_the_compatibility_rule_catches_each_kind_of_break() -> None:
    old = schemas()[("review.saved", 1)]
    assert breaking_changes(old, copy.deepcopy(old)) == []
    added_optional = copy.deepcopy(old)
    added_optional["properties"]["subject"]["properties"]["clinic_id"] = {"type": "string", "format": "uuid"}
    assert breaking_changes(old, added_optional) == []  # consumers ignore what they do not know
    removed = copy.deepcopy(old)
    del removed["properties"]["subject"]["properties"]["therapist_id"]
    assert breaking_changes(old, removed) == ["/subject/therapist_id: removed"]
    required = copy.deepcopy(added_optional)
    required["properties"]["subject"]["required"].append("clinic_id")
    assert breaking_changes(old, required) == ["/subject: newly required ['clinic_id']"]
    retyped = copy.deepcopy(old)
    retyped["properties"]["occurred_at"] = {"type": "integer"}
    assert [p.split(" changed")[0] for p in breaking_changes(old, retyped)] == [
        "/occurred_at: type",
        "/occurred_at: format",
        "/occurred_at: pattern",
    ]


def test_asyncapi_json_is_public_and_describes_every_channel(api: Api) -> None:
    r = api.client.get("/asyncapi.json")  # no token
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc == json.loads(json.dumps(asyncapi()))
    assert doc["asyncapi"].startswith("3.")
    assert set(doc["channels"]) == set(CATALOGUE)
    for name, kind in CATALOGUE.items():
        channel = doc["channels"][name]
        assert channel["address"] == f"vocalborn.events.{name}"
        key = f"{name}.v{kind.version}"
        assert key in channel["messages"]
        assert doc["components"]["messages"][key]["payload"] == schemas()[(name, kind.version)]
        assert doc["operations"][f"receive.{name}"]["action"] == "receive"
    assert "@" not in r.text  # no e-mail address, nor anything else of a user


def test_events_md_lists_every_type_with_its_ids() -> None:
    text = (ROOT / "docs" / "EVENTS.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([a-z_]+\.[a-z_]+)` \| (\d+) \|", text, re.M)}
    assert set(rows) == set(CATALOGUE), "docs/EVENTS.md's catalogue table differs from the event types"
    for name, kind in CATALOGUE.items():
        assert int(rows[name]) == kind.version, name
        line = next(line for line in text.splitlines() if line.startswith(f"| `{name}` |"))
        for field in kind.subject:
            assert f"`{field}`" in line, (name, field)
