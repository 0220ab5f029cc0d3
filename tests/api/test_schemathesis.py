"""Property-based fuzzing of every operation in the OpenAPI schema: no input gives a 5xx.

Runs as the operator (who may reach every route) against the in-process app on a
seeded store, with schemathesis generating both schema-valid and schema-invalid
requests for each operation. Only server errors are failures: 4xx answers to
nonsense are exactly what we want.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.api.conftest import Api

EXAMPLES_PER_OPERATION = 12
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@pytest.mark.slow
def test_no_input_makes_a_server_error(api: Api) -> None:
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", api.client.app)
    headers = {"Authorization": f"Bearer {api.operator_token}"}
    failures: list[str] = []
    exercised = 0
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 40

    for operation, mode in itertools.product(operations, MODES):

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy(generation_mode=mode))
        def exercise(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(
                    f"{case.method} {case.formatted_path} "
                    f"query={case.query} body={case.body!r:.300}: "
                    f"{response.status_code} {response.text[:300]}"
                )

        try:
            exercise()
        except Unsatisfiable:
            # An operation without parameters has no invalid form to generate.
            assert mode is schemathesis.GenerationMode.NEGATIVE, operation.label
            continue
        exercised += 1
    assert exercised >= len(operations) + 20
    assert not failures, "\n".join(failures[:20])
