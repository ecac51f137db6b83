"""The served OpenAPI schema says what the server does (issue 9, item 13): the problem responses
of each operation, in their real shape, and every limit the server enforces."""

from __future__ import annotations

from typing import Any

import pytest

from support.api import ok


@pytest.fixture(scope="module")
def schema(server) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    with server.client() as http:
        return ok(http.get("/openapi.json"))


def operation(schema: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    return schema["paths"]["/api/v1" + path][method]


def component(schema: dict[str, Any], name: str) -> dict[str, Any]:
    return schema["components"]["schemas"][name]


def test_every_error_is_documented_as_problem_json(schema) -> None:  # type: ignore[no-untyped-def]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    problem = component(schema, "Problem")
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}
    for path, operations in schema["paths"].items():
        for method, op in operations.items():
            errors = {s: r for s, r in op["responses"].items() if s[0] in "45"}
            assert "400" in errors, (method, path)
            for status, response in errors.items():
                content = response["content"]
                assert list(content) == ["application/problem+json"], (method, path, status)
                assert content["application/problem+json"]["schema"] == {
                    "$ref": "#/components/schemas/Problem"
                }


@pytest.mark.parametrize(
    ("method", "path", "statuses"),
    [
        ("get", "/chats/{chat_id}", {"400", "401", "404", "422"}),
        ("post", "/auth/register", {"400", "403", "409", "413", "422", "429"}),
        ("post", "/auth/login", {"401", "429"}),
        ("post", "/chats/{chat_id}/messages", {"401", "403", "404", "409", "413", "429"}),
        ("patch", "/uploads/{upload_id}", {"409", "412", "413", "415", "507"}),
        ("post", "/imports", {"409", "411", "413", "507"}),
    ],
)
def test_operations_document_the_statuses_they_answer(schema, method, path, statuses) -> None:  # type: ignore[no-untyped-def]
    documented = set(operation(schema, method, path)["responses"])
    assert statuses <= documented
    if "429" in statuses:
        assert "Retry-After" in operation(schema, method, path)["responses"]["429"]["headers"]


def test_the_limits_the_server_enforces_are_in_the_schema(schema) -> None:  # type: ignore[no-untyped-def]
    register = component(schema, "RegisterIn")["properties"]
    assert register["handle"]["pattern"] == "^[ \\t]*[A-Za-z0-9_.]{3,32}[ \\t]*$"
    assert register["password"]["minLength"] == 8
    assert component(schema, "SendMessageIn")["properties"]["client_id"]["minLength"] == 1
    text = component(schema, "SendMessageIn")["properties"]["text"]["anyOf"][0]
    assert text["maxLength"] == 4096
    chat_ids = component(schema, "ForwardIn")["properties"]["chat_ids"]
    assert (chat_ids["minItems"], chat_ids["maxItems"]) == (1, 5)
    params = {
        p["name"]: p for p in operation(schema, "get", "/chats/{chat_id}/messages")["parameters"]
    }
    assert (params["limit"]["schema"]["minimum"], params["limit"]["schema"]["maximum"]) == (1, 200)
    for method, path in [("post", "/uploads"), ("head", "/uploads/{upload_id}")]:
        tus = {p["name"]: p for p in operation(schema, method, path)["parameters"]}
        assert tus["tus-resumable"]["required"] is True
        assert tus["tus-resumable"]["schema"]["enum"] == ["1.0.0"]
    patch = operation(schema, "patch", "/uploads/{upload_id}")
    assert list(patch["requestBody"]["content"]) == ["application/offset+octet-stream"]


def test_limits_follow_the_settings(make_server) -> None:  # type: ignore[no-untyped-def]
    srv = make_server(limits__page_max=50, limits__forward_max_chats=3)
    with srv.client() as http:
        served = ok(http.get("/openapi.json"))
    params = {
        p["name"]: p for p in operation(served, "get", "/chats/{chat_id}/messages")["parameters"]
    }
    assert params["limit"]["schema"]["maximum"] == 50
    assert component(served, "ForwardIn")["properties"]["chat_ids"]["maxItems"] == 3


def test_a_wrong_method_lists_every_method_of_the_path(server) -> None:  # type: ignore[no-untyped-def]
    with server.client() as http:
        r = http.put("/messages/01JC0000000000000000000000")
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET"
