"""Command rendering is safe by construction: values never become new arguments."""

from __future__ import annotations

import pytest

from operation_svc.rendering import Refusal, placeholders, render_argv, split_command

ALLOWED = ["echo", "ls", "/usr/bin/printf"]


@pytest.mark.parametrize(
    "value",
    [
        "a; touch /tmp/pwned",
        "$(id)",
        "`id`",
        "a|b",
        "a\nb",
        "a && rm -rf /",
        "{{other}}",
        "'; echo hi; '",
        "x > /etc/passwd",
    ],
)
def test_injection_attempts_stay_one_literal_argument(value: str) -> None:
    argv = split_command("echo {{message}}", ALLOWED)
    assert render_argv(argv, {"message": value, "other": "SECRET"}) == ["echo", value]


def test_values_are_substituted_once_inside_their_element() -> None:
    argv = split_command('echo "hello {{name}}, from {{place}}" done', ALLOWED)
    assert argv == ["echo", "hello {{name}}, from {{place}}", "done"]
    assert placeholders(argv) == ["name", "place"]
    assert render_argv(argv, {"name": "{{place}}", "place": "here"}) == [
        "echo",
        "hello {{place}}, from here",
        "done",
    ]


@pytest.mark.parametrize(
    ("template", "rule"),
    [
        ("{{cmd}} --help", "executable_placeholder"),
        ("rm -rf /", "executable_not_allowed"),
        ("/bin/sh -c 'echo {{x}}'", "executable_not_allowed"),
        ("bash", "executable_not_allowed"),
        ("echo 'unterminated", "syntax"),
        ("   ", "syntax"),
    ],
)
def test_unsafe_templates_are_refused_at_save_time(template: str, rule: str) -> None:
    with pytest.raises(Refusal) as refused:
        split_command(template, ALLOWED)
    assert refused.value.rule == rule


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ({"path": "--output=/etc/x"}, "leading_dash"),
        ({"path": "-rf"}, "leading_dash"),
        ({}, "missing_parameter"),
        ({"path": "a\x00b"}, "nul_byte"),
        ({"path": "a" * 70_000}, "too_long"),
    ],
)
def test_unsafe_values_are_refused_naming_the_rule(values: dict[str, str], rule: str) -> None:
    with pytest.raises(Refusal) as refused:
        render_argv(split_command("ls {{path}}", ALLOWED), values)
    assert refused.value.rule == rule


def test_a_dash_inside_a_larger_argument_is_a_value_not_an_option() -> None:
    argv = split_command("ls --color=never ./{{path}}", ALLOWED)
    assert render_argv(argv, {"path": "-rf"}) == ["ls", "--color=never", "./-rf"]


def test_absolute_allowlisted_executables_are_accepted() -> None:
    assert split_command("/usr/bin/printf %s {{x}}", ALLOWED)[0] == "/usr/bin/printf"
