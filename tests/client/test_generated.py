"""The client's generated modules follow the server: the catalog and the sync API."""

from __future__ import annotations

import pytest

from racefree import client_codegen
from racefree.catalog import CATALOG
from racefree.client import errors
from racefree.client.exceptions import ApiError


@pytest.mark.parametrize("path", list(client_codegen.outputs()), ids=lambda p: p.name)
def test_generated_files_are_current(path: object) -> None:
    expected = client_codegen.outputs()
    assert path in expected
    assert path.read_text() == expected[path], (  # type: ignore[attr-defined]
        "stale: run `python -m racefree.client_codegen`"
    )


def test_every_catalog_code_maps_to_exactly_one_exception_class() -> None:
    assert set(errors.BY_CODE) == {code.value for code in CATALOG}
    classes = list(errors.BY_CODE.values())
    assert len(set(classes)) == len(classes) == len(CATALOG)
    for code, spec in CATALOG.items():
        cls = errors.BY_CODE[code.value]
        assert issubclass(cls, ApiError) and cls is not ApiError
        assert (cls.code, cls.default_status, cls.default_retryable, cls.domain) == (
            code.value,
            spec.status,
            spec.retryable,
            spec.domain,
        )
        assert getattr(errors, cls.__name__) is cls
        # no class serves two codes through inheritance either
        assert [c for c in classes if issubclass(c, cls)] == [cls]


def test_an_error_instance_carries_the_answer() -> None:
    error = errors.RenewalConflictError(
        "another request renewed this session first",
        status=409,
        retry_after=None,
        details={"session_id": "s"},
        request_id="req_1",
        hint="use the winner's token",
    )
    assert (error.error_code, error.status, error.retryable) == ("RENEWAL_CONFLICT", 409, False)
    assert error.details == {"session_id": "s"} and error.request_id == "req_1"
    assert str(error) == (
        "RENEWAL_CONFLICT (409): another request renewed this session first"
        " -- use the winner's token [request req_1]"
    )
