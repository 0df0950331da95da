"""The OpenAPI document is true to the app: every route under ``/api/v1`` and ``/fhir``
is in it with exactly its methods, nothing else is, and the document is valid OpenAPI
3.1 whose every operation loads in schemathesis."""

from __future__ import annotations

import re

from outcome.web.api.openapi import document

PREFIXES = ("/api/", "/fhir")


def _routes(app) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(PREFIXES):
            continue
        path = re.sub(r"<(?:[a-z]+(?:\([^)]*\))?:)?([a-z_]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(
            m.lower() for m in rule.methods - {"HEAD", "OPTIONS"})
    return routes


def test_every_route_is_documented_with_its_methods_and_nothing_else(app):
    documented = {path: {m for m in item if m in ("get", "post", "put", "patch", "delete")}
                  for path, item in document()["paths"].items()}
    assert _routes(app) == documented


def test_the_served_document_is_the_document(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200 and response.get_json() == document()


def test_every_operation_is_complete():
    doc = document()
    assert doc["openapi"].startswith("3.1")
    ids = []
    for path, item in doc["paths"].items():
        names = set(re.findall(r"{([a-z_]+)}", path))
        for method, operation in item.items():
            ids.append(operation["operationId"])
            assert operation["responses"], (method, path)
            declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
            assert declared == names, (method, path)
            for response in operation["responses"].values():
                for media in response.get("content", {}).values():
                    ref = media["schema"].get("$ref", "")
                    assert not ref or ref.split("/")[-1] in doc["components"]["schemas"]
    assert len(ids) == len(set(ids)), "operationIds are unique"


def test_every_operation_loads_in_schemathesis():
    from schemathesis.openapi import from_dict

    schema = from_dict(document())
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(item) for item in document()["paths"].values())
