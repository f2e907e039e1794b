"""HTTP operation templates: values cannot move the request elsewhere or forge headers."""

from __future__ import annotations

import pytest

from operation_svc.safety.http import compile_http, render_http
from operation_svc.safety.parameters import ParameterSpec
from operation_svc.safety.verdict import Refusal

SPECS = [ParameterSpec.from_dict({"name": "name"}), ParameterSpec.from_dict({"name": "tag"})]


def template(**overrides: object) -> dict[str, object]:
    return compile_http(
        {
            "method": "post",
            "url": "https://api.example.com/v1/services/{{name}}/restart?tag={{tag}}",
            "headers": {"X-Reason": "by {{name}}"},
            "body": {"service": "{{name}}", "n": 1},
        }
        | overrides,
        SPECS,
    )


def test_values_are_encoded_where_they_land() -> None:
    rendered = render_http(template(), {"name": "../../admin?x=1#", "tag": "a&b=c"})
    assert rendered.method == "POST"
    assert rendered.url == (
        "https://api.example.com/v1/services/..%2F..%2Fadmin%3Fx%3D1%23/restart?tag=a%26b%3Dc"
    )
    assert rendered.body == {"service": "../../admin?x=1#", "n": 1}
    assert rendered.headers == {"X-Reason": "by ../../admin?x=1#"}


@pytest.mark.parametrize(
    ("name", "tag", "named"),
    [("..", "", "name"), (".", "", "name"), ("", "..", "tag"), (".", ".", "name")],
)
def test_a_value_making_a_dot_segment_is_refused(name: str, tag: str, named: str) -> None:
    """The client resolves ``/v1/services/../restart`` to ``/v1/restart``: the request
    went to another path than the one shown and approved."""
    spec = template(url="https://api.example.com/v1/services/{{name}}{{tag}}/restart")
    with pytest.raises(Refusal) as refused:
        render_http(spec, {"name": name, "tag": tag})
    assert refused.value.rule == "dot_segment"
    assert refused.value.parameter == named
    for value in ("...", "%2e%2e", "..a", "../..", ".hidden"):
        rendered = render_http(spec, {"name": value, "tag": ""})
        segment = rendered.url.split("/")[-2]
        assert segment not in (".", ".."), value


def test_a_header_value_cannot_smuggle_another_header() -> None:
    with pytest.raises(Refusal) as refused:
        render_http(template(), {"name": "x\r\nX-Admin: yes", "tag": "t"})
    assert (refused.value.rule, refused.value.parameter) == ("header_injection", "name")
    both = template(headers={"X-Reason": "{{tag}} by {{name}}"})
    with pytest.raises(Refusal) as refused:
        render_http(both, {"name": "x\ny", "tag": "t"})
    assert refused.value.parameter == "name"  # the value at fault, not the header's first


@pytest.mark.parametrize("value", ["caf\u00e9", "\U0001f600", "a\x7fb", "a\x1bb"])
def test_a_value_no_client_can_send_in_a_header_is_refused(value: str) -> None:
    """Before the run: the HTTP client would fail on it (non-ASCII) or send a control byte."""
    with pytest.raises(Refusal) as refused:
        render_http(template(), {"name": value, "tag": "t"})
    assert (refused.value.rule, refused.value.parameter) == ("header_value", "name")
    assert render_http(template(), {"name": "plain words\tand a tab", "tag": "t"}).headers


@pytest.mark.parametrize(
    ("overrides", "rule", "at"),
    [
        ({"url": "https://{{name}}.example.com/"}, "placeholder_in_host", "url"),
        ({"url": "http://example.com:{{tag}}/"}, "placeholder_in_host", "url"),
        ({"url": "ftp://example.com/"}, "url", "url"),
        ({"url": "/relative"}, "url", "url"),
        ({"url": "http://xn--/v1/{{name}}?t={{tag}}"}, "url", "url"),  # no call could use them
        ({"url": "http://example.com:99999/{{name}}?t={{tag}}"}, "url", "url"),
        ({"url": "http://[::1/{{name}}?t={{tag}}"}, "url", "url"),  # answered 500 when saved
        ({"url": " https://example.com/{{name}}?t={{tag}}"}, "url", "url"),  # called relative
        ({"url": "https://example.com/{{name}}?t={{tag}}\t"}, "url", "url"),
        ({"url": "https://example.com/a/../{{name}}?t={{tag}}"}, "url", "url"),
        ({"url": "https://example.com/./{{name}}?t={{tag}}"}, "url", "url"),
        ({"method": "TRACE"}, "method", "method"),
        ({"headers": {"Host": "evil"}}, "header_name", "headers.Host"),
        ({"headers": {"X-Bad Name": "x"}}, "header_name", "headers.X-Bad Name"),
        ({"headers": {"host": "admin.internal"}}, "header_name", "headers.host"),
        (
            {"headers": {"X-Reason": "caf\u00e9 {{name}}"}},
            "header_value",
            "headers.X-Reason",
        ),  # the client
        (
            {"headers": {"X-Reason": "a\r\nX-Admin: yes {{name}}"}},
            "header_value",
            "headers.X-Reason",
        ),  # can't
        ({"body": {"x": "{{missing}}"}}, "undeclared_parameter", None),
    ],
)
def test_unsafe_http_templates_are_refused_at_save_time(
    overrides: dict[str, object], rule: str, at: str | None
) -> None:
    """Each refusal names the part of the template at fault (the API's error points there)."""
    with pytest.raises(Refusal) as refused:
        template(**overrides)
    assert (refused.value.rule, refused.value.at) == (rule, at)


def test_an_http_template_takes_no_secret_parameter() -> None:
    token = ParameterSpec.from_dict({"name": "token", "type": "secret"})
    with pytest.raises(Refusal) as refused:
        compile_http(
            {"url": "https://api.example.com/", "headers": {"X-Token": "{{token}}"}}, [token]
        )
    assert (refused.value.rule, refused.value.parameter) == ("secret_in_http", "token")


def test_a_request_rendering_values_past_what_a_job_holds_is_refused() -> None:
    """A value fits, but the body repeats it, nested, and emoji are escaped 12 bytes each."""
    nested = {"items": [{"name": "{{name}}", "tags": ["{{tag}}", "{{name}}"]}] * 2}
    spec = template(body=nested, headers={})
    plain = render_http(spec, {"name": "x" * 4096, "tag": "t"})
    assert plain.body["items"][1]["tags"][1] == "x" * 4096
    with pytest.raises(Refusal) as refused:
        render_http(spec, {"name": "😀" * 4096, "tag": "t"})
    assert refused.value.rule == "too_large"
    assert "the rendered request takes" in refused.value.message


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer a", "authorization": "Bearer b"},
        {"X-Reason": "by {{name}}", "x-REASON": "{{tag}}"},
    ],
)
def test_a_header_named_twice_in_any_case_is_refused_naming_it(headers: dict[str, str]) -> None:
    """Both copies were sent: a receiver reads the one it likes (a gateway another than the
    service behind it), and the platform's own services refuse a credential sent twice."""
    with pytest.raises(Refusal) as refused:
        template(headers=headers)
    second = list(headers)[1]
    assert (refused.value.rule, refused.value.at) == ("header_name", f"headers.{second}")
