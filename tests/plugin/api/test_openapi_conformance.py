"""schemathesis against the API's own OpenAPI document: generated calls to every operation, as an
admin of a workspace with a scored community, never get a 500, and every answer conforms to the
document (status, content type, headers, body schema)."""

from __future__ import annotations

import dataclasses

import hypothesis
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy import Engine

from plugin.settings import Settings
from plugin.web.app import create_app
from tests.plugin.api.conftest import Auth

EXAMPLES = 20


def test_every_operation_conforms_to_the_document(
    engine: Engine, settings: Settings, scored: dict[str, int], auth: Auth
) -> None:
    # One test over every operation (schemathesis' pytest fixture loader does not run on pytest 9):
    # each operation gets its own generated calls, and every failure is reported together.
    # A configured installation: a missing setting answers 500 by design (the caller cannot fix it).
    app = create_app(dataclasses.replace(settings, public_url="https://flywheel.example.com"), engine)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    headers = auth("admin")
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 6
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: schemathesis.Case) -> None:
            # Schema-valid calls may still be refused for what a schema cannot say (a cursor this
            # API never gave, score bounds without the score they bound): 400/422, never 500.
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then report
            failures[operation.label] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())


def test_the_document_is_served_with_its_interactive_page(app: Flask) -> None:
    client = app.test_client()
    document = client.get("/api/openapi.json").json
    assert document["openapi"].startswith("3.") and document["components"]["securitySchemes"]["bearer"]
    verbs = ("get", "post", "put", "patch", "delete")
    operations = [op for path in document["paths"].values() for verb, op in path.items() if verb in verbs]
    assert operations and all(op.get("security") == [{"bearer": []}] for op in operations)
    page = client.get("/api/docs")
    assert page.status_code == 200 and "/api/openapi.json" in client.get("/api/docs/start.js").text
    assert client.get("/api/docs/assets/swagger-ui-bundle.js").status_code == 200  # served here, no CDN
