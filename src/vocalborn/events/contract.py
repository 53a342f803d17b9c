"""The published contract: the JSON Schema of each event type and version (``schemas/``), the
AsyncAPI document built from them (served at ``GET /asyncapi.json``), and the rule that tells a
backward-compatible change of a schema from a breaking one (tests/events/test_schemas.py)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from vocalborn.events.catalogue import CATALOGUE, SCHEMA_DIR, SUBJECT_PREFIX

_FILE = re.compile(r"^(?P<type>[a-z_]+\.[a-z_]+)\.v(?P<version>[0-9]+)\.json$")


@lru_cache(maxsize=1)
def schemas() -> dict[tuple[str, int], dict[str, Any]]:
    """Every schema file: (type, version) -> schema."""
    out: dict[tuple[str, int], dict[str, Any]] = {}
    for path in sorted(SCHEMA_DIR.glob("*.json")):
        found = _FILE.match(path.name)
        if found is None:
            raise ValueError(f"{path.name}: a schema file is named <type>.v<version>.json")
        out[(found["type"], int(found["version"]))] = json.loads(path.read_text())
    return out


def schema_for(event_type: str, version: int) -> dict[str, Any]:
    return schemas()[(event_type, version)]


def asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0: one channel per event type (its NATS subject), one message per version."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for (name, version), schema in schemas().items():
        key = f"{name}.v{version}"
        kind = CATALOGUE.get(name)
        messages[key] = {
            "name": name,
            "title": schema.get("title", key),
            "summary": kind.summary if kind else schema.get("description", ""),
            "contentType": "application/json",
            "headers": {
                "type": "object",
                "required": ["Nats-Msg-Id"],
                "properties": {"Nats-Msg-Id": {"type": "string", "format": "uuid", "description": "= the body's id"}},
            },
            "payload": schema,
        }
        channel = channels.setdefault(
            name,
            {
                "address": SUBJECT_PREFIX + name,
                "title": name,
                "description": kind.summary if kind else "",
                "messages": {},
            },
        )
        channel["messages"][key] = {"$ref": f"#/components/messages/{key}"}
        operations.setdefault(
            f"receive.{name}",
            {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{name}"},
                "summary": f"Consume {name} from the JetStream stream VOCALBORN.",
                "messages": [],
            },
        )["messages"].append({"$ref": f"#/channels/{name}/messages/{key}"})
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "VocalBorn Tasks integration events",
            "version": "1",
            "description": (
                "Domain events published to the NATS JetStream stream VOCALBORN (subjects"
                f" {SUBJECT_PREFIX}<type>), at least once: deduplicate by id (= the Nats-Msg-Id"
                " header). Events of one learner arrive in the order they happened. Bodies carry"
                " ids only, never personal data. docs/EVENTS.md."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "jetstream": {
                "host": "nats:4222",
                "protocol": "nats",
                "description": "The deployment's NATS server (NATS_URL); stream VOCALBORN.",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }


# --------------------------------------------------------------------------------------------
# compatibility
# --------------------------------------------------------------------------------------------
_TYPE_KEYS = ("type", "const", "format", "enum", "pattern")


def breaking_changes(old: dict[str, Any], new: dict[str, Any], where: str = "") -> list[str]:
    """Why ``new`` cannot replace ``old`` under the same version (empty: it can). Breaking: a
    property removed, a field newly required, a type, const, format or enum changed. Adding an
    optional property is not (consumers ignore what they do not know)."""
    problems = []
    for key in _TYPE_KEYS:
        if old.get(key) != new.get(key):
            problems.append(f"{where or '/'}: {key} changed from {old.get(key)!r} to {new.get(key)!r}")
    added = sorted(set(new.get("required", [])) - set(old.get("required", [])))
    if added:
        problems.append(f"{where or '/'}: newly required {added}")
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, before in old_props.items():
        if name not in new_props:
            problems.append(f"{where}/{name}: removed")
        else:
            problems += breaking_changes(before, new_props[name], f"{where}/{name}")
    return problems
