"""Schemathesis against the served /openapi.json: generated requests never get a 5xx.

(Schemathesis' own pytest plugin does not work with this pytest, so each
operation's Hypothesis strategy is driven directly.)

Bounded (a few examples per operation, no deadline) so it takes seconds. Requests
carry an upload key, so they reach the handlers rather than stopping at 401.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from darkroom_ingest.api import create_api
from darkroom_ingest.settings import IngestSettings
from darkroom_ingest.testing import (
    KEYS,
    UPLOAD_KEY,
    ServerThread,
    auth,
    make_topics,
    new_prefix,
    wait_ready,
)

pytestmark = pytest.mark.kafka


@pytest.fixture(scope="module")
def upload_api_url(kafka_bootstrap, tmp_path_factory) -> Iterator[str]:
    prefix = new_prefix()
    make_topics(kafka_bootstrap, prefix)
    api_settings = IngestSettings(
        kafka_bootstrap_servers=kafka_bootstrap,
        topic_prefix=prefix,
        storage={"backend": "local", "root": tmp_path_factory.mktemp("objects")},
        auth={"api_keys": KEYS},
        max_upload_bytes=64 * 1024,
    )
    with ServerThread(create_api(api_settings)) as server:
        wait_ready(server.url)
        yield server.url


def test_no_generated_request_makes_a_server_error(upload_api_url):
    schema = schemathesis.openapi.from_url(f"{upload_api_url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 5
    seen: list[tuple[str, int]] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def run(case):
            response = case.call(base_url=upload_api_url, headers=auth(UPLOAD_KEY), timeout=10)
            seen.append((case.operation.label, response.status_code))
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
            if response.status_code >= 400:
                assert set(response.json()) == {"reason", "message"}

        run()
    assert {label for label, _ in seen} == {op.label for op in operations}
    assert any(status == 202 for _, status in seen)  # some generated uploads went through
