"""/docs works without internet: Swagger UI comes from the package, not a CDN."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from vocalborn.main import app


def test_the_api_docs_page_loads_everything_from_this_server() -> None:
    with TestClient(app) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(r"url: '([^']+)'", page.text)
        assert sources, page.text
        assert all(s.startswith("/") for s in sources), sources
        for source in sources:
            assert client.get(source).status_code == 200, source
        schema = client.get("/docs/openapi.json").json()
        assert schema["openapi"].startswith("3.0") and "/api/v1/tasks/analysis/submit" in schema["paths"]
        assert client.get("/openapi.json").json()["openapi"].startswith("3.1")  # clients keep the real schema
