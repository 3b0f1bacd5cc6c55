"""Property tests of the request parser (issue 13): whatever bytes a client sends as a JSON body,
`parse_json_body` gives records or a RequestError with a 4xx status and a message — never another
exception, never a 5xx."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plait.serving.body import parse_json_body
from plait.serving.inputs import InputSchema, RequestError
from plait.serving.settings import ServeSettings

COLUMNS = ["vibration", "sound", "thermal", "note", "pump_model", "age_years", "rpm", "records", "x"]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=30),
    st.sampled_from(["data:image/png;base64,iVBORw0KGgo=", "AAAA", "UklGRiQAAABXQVZF", "1e309", "NaN", ""]),
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.sampled_from(COLUMNS) | st.text(max_size=8), inner, max_size=6),
    ),
    max_leaves=30,
)


@pytest.fixture(scope="module")
def schema(pumps_bundle) -> tuple[InputSchema, ServeSettings]:
    served = ServeSettings(api_key=None, inference="thread")
    return InputSchema.build(pumps_bundle.trained, served), served


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=JSON)
def test_any_json_body_is_records_or_a_4xx(value: object, schema: tuple[InputSchema, ServeSettings]) -> None:
    _check(json.dumps(value).encode(), *schema)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_any_bytes_are_records_or_a_4xx(body: bytes, schema: tuple[InputSchema, ServeSettings]) -> None:
    _check(body, *schema)


def _check(body: bytes, schema: InputSchema, served: ServeSettings) -> None:
    try:
        single, records = parse_json_body(body, schema, served)
    except RequestError as exc:
        assert 400 <= exc.status < 500 and str(exc)
        return
    assert isinstance(single, bool) and (len(records) == 1 or not single)
