"""Schemathesis drives every operation of the platform's own OpenAPI document, served by
uvicorn on loopback, on PostgreSQL and on MariaDB: generated requests, valid (positive) and
invalid (negative), never get a server error, and every answer matches what the document
promises (documented status codes, content types, headers and schemas): valid data is
accepted and invalid data refused."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from platform_helpers import ThreadedServer, bearer_headers
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
    positive_data_acceptance,
]
EXAMPLES = {GenerationMode.POSITIVE: 8, GenerationMode.NEGATIVE: 5}


@pytest.fixture
def platform_openapi(
    platform_database_url: str, platform_settings_factory: Callable[..., Any], fresh_runtime: Any
) -> Iterator[Any]:
    from dbsight_platform.main import create_app

    app = create_app(platform_settings_factory(platform_database_url))
    server = ThreadedServer(app).start()
    try:
        # with an admin's token, so that the mutations are reached
        yield schemathesis.openapi.from_url(f"{server.url}/openapi.json"), bearer_headers(app)
    finally:
        server.stop()


def fuzz(operation: Any, mode: GenerationMode, session: requests.Session) -> None:
    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES[mode],
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def run(case: Any) -> None:
        response = case.call(session=session, timeout=30)
        case.validate_response(response, checks=CHECKS)

    run()


def test_no_server_error(platform_openapi: Any) -> None:
    schema, headers = platform_openapi
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    # the logout revokes the token every other operation sends: last
    operations.sort(key=lambda operation: operation.path.endswith("/auth/logout"))
    with requests.Session() as session:
        session.headers.update(headers)
        for operation in operations:
            for mode in EXAMPLES:
                fuzz(operation, mode, session)
