"""What a command template may start, tried as an attacker would: other paths and spellings
of an allowlisted program, launchers that start something else, options made of values, and
definitions that can never work."""

from __future__ import annotations

import shlex
from typing import Any

import pytest

from idp_common.executables import ExecutableAllowlist
from operation_svc.safety.commands import compile_command, render_command
from operation_svc.safety.parameters import ParameterSpec, validate_values
from operation_svc.safety.verdict import Refusal

SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"


def allowing(*entries: str) -> ExecutableAllowlist:
    return ExecutableAllowlist(
        entries, SEARCH_PATH, "OPERATION_ALLOWED_EXECUTABLES", "OPERATION_EXECUTABLE_PATH"
    )


DEFAULTS = allowing("echo", "true", "false", "sleep", "date", "printf", "printenv")
WITH_LAUNCHERS = allowing(
    "echo",
    "printf",
    "env",
    "nice",
    "nohup",
    "timeout",
    "setsid",
    "stdbuf",
    "xargs",
    "find",
    "flock",
    "time",
    "ionice",
    "rm",
)


def spec(name: str, **options: Any) -> ParameterSpec:
    return ParameterSpec.from_dict({"name": name, **options})


def specs_for(template: str) -> list[ParameterSpec]:
    return [spec(name) for name in ("cmd", "arg", "dir", "n", "x") if f"{{{{{name}}}}}" in template]


def refused(template: str, allowlist: ExecutableAllowlist = WITH_LAUNCHERS) -> Refusal:
    with pytest.raises(Refusal) as refusal:
        compile_command(template, specs_for(template), allowlist)
    return refusal.value


# Item 1: the allowlist compares absolute paths, never the last path component.


@pytest.mark.parametrize(
    "template",
    [
        "/tmp/x/echo hi",
        "../../tmp/x/echo hi",
        "./echo hi",
        "x/echo hi",
        "/usr/bin/../../tmp/x/echo hi",
        "/usr/local/../bin/echo hi",
        "//usr/bin/echo hi",
        "/usr/bin//echo hi",
        "/usr/bin/./echo hi",
        "/usr/bin/echo/ hi",
        "/opt/echo hi",
        "/home/user/bin/echo hi",
        "ECHO hi",
        "echo\u200b hi",
        "\uff45\uff43\uff48\uff4f hi",
        "rm -rf /tmp/x",
    ],
)
def test_an_executable_that_is_not_an_allowlisted_path_is_refused(template: str) -> None:
    refusal = refused(template, DEFAULTS)
    assert refusal.rule == "executable_not_allowed"
    assert "OPERATION_ALLOWED_EXECUTABLES" in refusal.message


@pytest.mark.parametrize(
    "template", ["echo hi", "/usr/bin/echo hi", "/bin/echo hi", "/usr/local/bin/echo hi"]
)
def test_an_allowlisted_name_may_be_written_as_its_path_on_the_search_path(template: str) -> None:
    assert compile_command(template, [], DEFAULTS)[1:] == ["hi"]


def test_an_allowlisted_absolute_path_is_exactly_that_path() -> None:
    tools = allowing("/opt/tools/deploy")
    assert compile_command("/opt/tools/deploy now", [], tools) == ["/opt/tools/deploy", "now"]
    for template in ("deploy now", "/opt/tools/../tools/deploy now", "/usr/bin/deploy now"):
        with pytest.raises(Refusal) as refusal:
            compile_command(template, [], tools)
        assert refusal.value.rule == "executable_not_allowed"


def test_env_is_not_on_the_default_allowlist() -> None:
    for template in ("env sh -c 'id'", "env echo hi", "/usr/bin/env echo hi"):
        assert refused(template, DEFAULTS).rule == "executable_not_allowed"


# Item 2: a launcher's program is read by the launcher's own grammar, and must be a literal
# on the allowlist.


@pytest.mark.parametrize(
    ("template", "rule"),
    [
        ("env sh -c 'id'", "executable_not_allowed"),
        ("env python3 -c 'import os'", "executable_not_allowed"),
        ("env rm -rf /", "denylisted_pattern"),
        ("env /tmp/x/echo hi", "executable_not_allowed"),
        ("env -u FOO {{cmd}} {{arg}}", "program_not_literal"),
        ("env -uFOO {{cmd}}", "program_not_literal"),
        ("env --unset=FOO {{cmd}}", "program_not_literal"),
        ("env --un FOO {{cmd}}", "program_not_literal"),
        ("env -C /tmp {{cmd}} {{arg}}", "program_not_literal"),
        ("env -C{{dir}} {{cmd}}", "program_not_literal"),
        ("env A=B {{cmd}} {{arg}}", "program_not_literal"),
        ("env -i {{cmd}}", "program_not_literal"),
        ("env - {{cmd}}", "program_not_literal"),
        ("env -- {{cmd}}", "program_not_literal"),
        ("env {{x}}=1 echo", "program_not_literal"),
        ("env {{cmd}}", "program_not_literal"),
        ("env -S 'sh -c id'", "launcher_option"),
        ("env --split-string='sh -c id'", "launcher_option"),
        ("env --sp='sh -c id'", "launcher_option"),
        ("env -iS'sh -c id'", "launcher_option"),
        ("env -vS sh", "launcher_option"),
        ("env --argv0=sh echo hi", "launcher_option"),
        ("env -a sh echo hi", "launcher_option"),
        ("env -{{x}} echo", "placeholder_in_launcher"),
        ("env --{{x}} echo", "placeholder_in_launcher"),
        ("env --bogus echo", "launcher_option"),
        ("env --i echo", "launcher_option"),
        ("env LD_PRELOAD=/tmp/x.so echo hi", "unsafe_variable"),
        ("env PATH=/tmp echo hi", "unsafe_variable"),
        ("env BASH_ENV=/tmp/x echo hi", "unsafe_variable"),
        # Variables programs read as their options or a command, and any name not known inert.
        ("env TAR_OPTIONS={{x}} echo hi", "placeholder_in_variable"),
        ("env -i MAKEFLAGS={{x}} echo hi", "placeholder_in_variable"),
        ("env GIT_SSH_COMMAND={{x}} echo hi", "placeholder_in_variable"),
        ("env GIT_CONFIG_VALUE_0={{x}} echo hi", "placeholder_in_variable"),
        ("env LUA_INIT=@{{x}} echo hi", "placeholder_in_variable"),
        ("env OPENSSL_CONF=/tmp/{{x}} echo hi", "placeholder_in_variable"),
        ("env LESSOPEN={{x}}{{arg}} echo hi", "placeholder_in_variable"),
        ("env LANGUAGE={{x}} echo hi", "placeholder_in_variable"),
        ("env A={{x}} echo hi", "placeholder_in_variable"),
        ("env TZ=UTC A={{x}} echo hi", "placeholder_in_variable"),
        ("nice env -u X TZX={{x}} echo hi", "placeholder_in_variable"),
        ("timeout 5 env -- PHPRC={{x}} echo hi", "placeholder_in_variable"),
        ("nice sh -c id", "executable_not_allowed"),
        ("nice {{cmd}}", "program_not_literal"),
        ("nice -n 5 {{cmd}}", "program_not_literal"),
        ("nice -5 {{cmd}}", "program_not_literal"),
        ("nice --adjustment=5 {{cmd}}", "program_not_literal"),
        ("nice -{{n}} echo", "placeholder_in_launcher"),
        ("nohup {{cmd}}", "program_not_literal"),
        ("nohup -- {{cmd}}", "program_not_literal"),
        ("timeout 5 {{cmd}}", "program_not_literal"),
        ("timeout -s KILL 5 sh -c id", "executable_not_allowed"),
        ("timeout --signal=KILL -k 1 5 {{cmd}}", "program_not_literal"),
        ("setsid -w {{cmd}}", "program_not_literal"),
        ("stdbuf -oL {{cmd}}", "program_not_literal"),
        ("stdbuf -o L sh", "executable_not_allowed"),
        ("time -f %e {{cmd}}", "program_not_literal"),
        ("ionice -c 3 {{cmd}}", "program_not_literal"),
        ("flock /tmp/lock {{cmd}}", "program_not_literal"),
        ("flock /tmp/lock -c 'id'", "launcher_option"),
        ("flock -w 5 /tmp/lock --command=id", "launcher_option"),
        ("xargs {{cmd}}", "program_not_literal"),
        ("xargs -0", "launcher_program"),
        ("xargs -I{} {} x", "program_not_literal"),
        ("xargs -I % %echo", "program_not_literal"),
        ("xargs -i {}", "program_not_literal"),
        ("xargs -n 1 sh -c id", "executable_not_allowed"),
        # What xargs reads would become the launcher's options and program.
        ("xargs nice", "launcher_program"),
        ("xargs -a /tmp/list nice", "launcher_program"),
        ("xargs -d = -n 1 -E IDP_PARAM_CMD -a /proc/self/environ nice", "launcher_program"),
        ("xargs -a /tmp/list nice -n 5 echo", "launcher_program"),
        ("xargs -I{} env {}=1 echo", "launcher_program"),
        ("xargs env", "launcher_program"),
        ("xargs timeout 5", "launcher_program"),
        ("xargs /usr/bin/setsid", "launcher_program"),
        ("xargs -0 -- stdbuf -oL", "launcher_program"),
        ("xargs find . -name", "launcher_program"),
        ("xargs xargs echo", "launcher_program"),
        ("xargs flock /tmp/lock", "launcher_program"),
        ("xargs sudo", "launcher_program"),
        ("nice xargs -a /tmp/list time", "launcher_program"),
        ("find . -exec xargs -a {} nohup \\;", "launcher_program"),
        ("find . -exec sh -c id \\;", "executable_not_allowed"),
        ("find . -exec {} \\;", "program_not_literal"),
        ("find . -execdir {{cmd}} \\;", "program_not_literal"),
        ("find . -ok rm -rf / \\;", "denylisted_pattern"),
        ("find . -exec echo {} \\; -exec sh -c id \\;", "executable_not_allowed"),
        ("find . -exec", "launcher_program"),
        ("find . -{{x}} echo", "placeholder_in_launcher"),
        ("nice env sh -c id", "executable_not_allowed"),
        ("env nice {{cmd}}", "program_not_literal"),
        ("timeout 5 env -S 'sh -c id'", "launcher_option"),
        ("nice rm -rf /", "denylisted_pattern"),
    ],
)
def test_a_launcher_starts_only_literal_allowlisted_programs(template: str, rule: str) -> None:
    assert refused(template).rule == rule


@pytest.mark.parametrize(
    "template",
    [
        "env echo hi",
        "env -i A=B echo {{arg}}",
        "env A=B TZ={{x}} echo hi",
        "env COLUMNS={{n}} LINES={{n}} echo hi",
        "env -C {{dir}} echo hi",
        "env --chdir={{dir}} -u FOO echo hi",
        "env",
        "nice -n 5 echo {{arg}}",
        "nice -5 echo hi",
        "nice env echo hi",
        "timeout {{n}} echo hi",
        "timeout -k 1 5 nice -n 3 echo hi",
        "xargs -0 echo",
        "find {{dir}} -name '*.log' -exec echo {} +",
        "find . -exec echo {} \\; -exec printf %s {} \\;",
        "flock /tmp/lock echo hi",
        "ionice -c 3 echo hi",
        "setsid -w echo hi",
        "stdbuf -oL echo hi",
        "nohup echo hi",
        "time -f %e echo hi",
    ],
)
def test_a_launcher_of_an_allowlisted_program_is_saved(template: str) -> None:
    compile_command(template, specs_for(template), WITH_LAUNCHERS)


def test_a_value_set_as_a_variable_by_a_template_saved_earlier_is_refused_when_run() -> None:
    saved = ["env", "TAR_OPTIONS={{x}}", "tar", "-cf", "/dev/null", "/etc/hostname"]
    with pytest.raises(Refusal) as refusal:
        render_command(saved, [spec("x")], {"x": "--checkpoint-action=exec=id"})
    assert refusal.value.rule == "placeholder_in_variable"


@pytest.mark.parametrize(
    "launcher",
    [
        *("sudo", "chroot", "watch", "ssh", "strace", "busybox", "unshare", "nsenter"),
        *("ssh-agent", "run-parts", "logsave", "systemd-cat", "pee", "mispipe", "socat"),
    ],
)
def test_launchers_without_a_grammar_are_refused_even_when_allowlisted(launcher: str) -> None:
    refusal = refused(f"{launcher} echo hi", allowing(launcher, "echo"))
    assert refusal.rule in {"unchecked_launcher", "denylisted_command"}


@pytest.mark.parametrize(
    "template",
    [
        "find . -exec sh -c 'echo {}' \\;",  # a file named $(id)
        "find . -execdir bash -c 'cat {} | wc -l' \\;",
        "find . -exec python3 {} \\;",
        "find . -name '*.py' -exec python3 -c 'print(\"{}\")' \\;",
        "find . -exec sed -e 's/{}/x/' /etc/hosts \\;",
        "xargs python3",  # the first item read would be the code
        "xargs -a /tmp/list sh -c 'echo \"$@\"' _",  # refused as every interpreter under xargs is
        "xargs -I{} perl -e 'print 1' {}",  # an item "-esystem(...)" is code
        "xargs -I% sh -c 'echo %'",
        "xargs sed s/a/b/",
        "xargs awk '{print}'",
        "find . -exec sh -ec 'echo found {}' \\;",  # -ec: the script's place is in doubt
        "find . -exec bash -o errexit -c 'echo {}' \\;",
        "find . -exec perl -ne 'print' {} \\;",
        "find . -name '*.sql' -exec sqlite3 /srv/app.db {} \\;",  # a file named '.shell id'
        "xargs jq -n",
    ],
)
def test_what_find_or_xargs_reads_never_becomes_an_interpreters_code(template: str) -> None:
    allowlist = allowing(
        *("find", "xargs", "sh", "bash", "python3", "perl", "sed", "awk", "sqlite3", "jq")
    )
    assert refused(template, allowlist).rule == "input_in_script"


INTERPRETERS = allowing(
    *("sh", "bash", "rbash", "dash", "python3", "python3.11", "perl", "perl5.36.0", "node"),
    *("awk", "gawk", "mawk", "nawk", "sed", "env", "nice"),
    *("perl5.36-x86_64-linux-gnu", "python3.11-dbg", "pdb3", "pydoc3", "ruby3.1"),
    *("sqlite3", "jq", "gojq", "yq", "m4", "bc", "dc", "make", "ed", "ex", "vim", "psql"),
    "mysql",
)


@pytest.mark.parametrize(
    "template",
    [
        # A cluster or another option before the script: the value is the script.
        "sh -ec {{cmd}}",
        "bash -euc {{cmd}}",
        "bash -o errexit -c {{cmd}}",
        "bash -O extglob {{cmd}}",
        "python3 -Ec {{cmd}}",
        "python3 -W ignore {{cmd}}",
        "python3 -u -m {{cmd}}",
        "awk -F : {{cmd}} /etc/passwd",
        "awk -v n=1 {{cmd}} /etc/passwd",
        "gawk -f {{cmd}}",
        "sed -l 5 {{cmd}} /etc/hosts",
        "sed -n {{cmd}} /etc/hosts",
        "perl -M{{cmd}} -e 'print 1'",
        "perl -I{{dir}} -e 'print 1'",
        "perl -n -e {{cmd}}",
        "node --require {{cmd}} /opt/app.js",
        # The script itself.
        "sh {{cmd}}",
        "python3 -m {{cmd}}",
        "node -e {{cmd}}",
        "perl -e 'print 1' -e {{cmd}}",
        # Options read after the script by interpreters that read them there.
        "sed 's/a/b/' -e {{cmd}} /etc/hosts",
        "sed 's/a/b/' -f {{cmd}} /etc/hosts",
        "perl -e 'print @ARGV' -M{{cmd}}",
        "perl /opt/tool.pl -I {{dir}}",
        "gawk '{print}' -i {{cmd}} /etc/hosts",
        "node /opt/app.js --require {{cmd}}",
        # Other names of the same interpreters, and behind launchers.
        "rbash -c {{cmd}}",
        "dash -ec {{cmd}}",
        "python3.11 -Ec {{cmd}}",
        "perl5.36.0 -M{{cmd}} -e 1",
        "nawk -F : {{cmd}}",
        "mawk -v x=1 {{cmd}}",
        "/usr/bin/env nice -n 5 bash -ec {{cmd}}",
        # Packaged names: a platform or build after the version, other tools of a language.
        "perl5.36-x86_64-linux-gnu {{cmd}} {{dir}}",
        "/usr/bin/perl5.36-x86_64-linux-gnu -e {{cmd}}",
        "env perl5.36-x86_64-linux-gnu -M{{cmd}} -e 1",
        "python3.11-dbg -c {{cmd}}",
        "ruby3.1 {{cmd}}",
        "pdb3 {{cmd}}",
        "pydoc3 {{cmd}}",
        # Programs that read code of their own language: SQL and dot-commands, filters,
        # macros, makefile assignments, editor commands, calculator programs.
        "sqlite3 -readonly :memory: {{cmd}}",
        "sqlite3 /srv/app.db {{cmd}}",
        "sqlite3 {{cmd}} 'select 1'",
        "sqlite3 -cmd {{cmd}} /srv/app.db",
        "jq -n {{cmd}}",
        "jq {{cmd}} /srv/data.json",
        "jq -e {{cmd}}",
        "jq '.a' --from-file {{cmd}}",
        "gojq -n {{cmd}}",
        "yq e {{cmd}} /srv/a.yaml",
        "m4 {{cmd}}",
        "m4 -D X={{cmd}} /srv/a.m4",
        "bc {{cmd}}",
        "dc -e {{cmd}}",
        "dc /srv/a.dc {{cmd}}",
        "make {{cmd}}",
        "make -C /srv all X={{cmd}}",
        "ed {{cmd}}",
        "ed -s /srv/a.txt {{cmd}}",
        "ex {{cmd}}",
        "vim /srv/a.txt {{cmd}}",
        "psql -d app -c {{cmd}}",
        "psql {{cmd}}",
        "mysql app -e {{cmd}}",
    ],
)
def test_a_value_never_becomes_an_interpreters_code(template: str) -> None:
    assert refused(template, INTERPRETERS).rule == "placeholder_in_script"
    # Saved before the rule was this strict: refused when run.
    saved = shlex.split(template)
    with pytest.raises(Refusal) as refusal:
        render_command(saved, specs_for(template), {"cmd": "x", "dir": "x"})
    assert refusal.value.rule == "placeholder_in_script"


DASHLESS = allowing("tar", "ar", "ps", "env", "nice", "timeout")


def refused_when_saved_and_when_run(template: str, allowlist: Any, rule: str, **value: str) -> None:
    """Refused by ``rule`` when saved, and when a template saved before the rule runs with
    ``value`` (one parameter's)."""
    assert refused(template, allowlist).rule == rule
    with pytest.raises(Refusal) as refusal:
        render_command(shlex.split(template), specs_for(template), value)
    assert (refusal.value.rule, refusal.value.parameter) == (rule, *value)


@pytest.mark.parametrize(
    "template",
    [
        "tar {{arg}} /srv/backup.tar /etc/hostname",  # "cIf" then runs the next as a program
        "tar {{arg}}f /srv/backup.tar",
        "ar {{arg}} /srv/lib.a",
        "ps {{arg}}",
        "env TZ=UTC nice -n 5 tar {{arg}} x",
        "timeout 5 tar {{arg}}",
    ],
)
def test_a_value_is_never_the_dashless_options_of_tar_ar_or_ps(template: str) -> None:
    refused_when_saved_and_when_run(template, DASHLESS, "placeholder_as_options", arg="cIf")


def test_tar_takes_values_after_its_options() -> None:
    for template, expected in [
        ("tar -cf /srv/backup.tar {{arg}}", ["-cf", "/srv/backup.tar", "names.txt"]),
        ("tar cf {{arg}} /etc/hostname", ["cf", "names.txt", "/etc/hostname"]),
    ]:
        argv = compile_command(template, specs_for(template), DASHLESS)
        assert render_command(argv, specs_for(template), {"arg": "names.txt"}).argv[1:] == expected


@pytest.mark.parametrize(
    "template",
    [
        "python3 /opt/tools/report.py {{arg}}",
        "python3 /opt/tools/report.py --name {{arg}} {{x}}",  # python reads no option there
        "python3 -c 'import sys; print(sys.argv[1])' {{arg}}",
        "python3 -m http.server {{n}}",
        "sh -c 'echo \"$1\"' sh {{arg}}",
        "bash /opt/tools/deploy.sh -v {{arg}}",
        "perl -e 'print @ARGV' {{arg}}",
        "awk '{print $1}' {{arg}}",
        "sed 's/a/b/' {{arg}}",
        "node /opt/app.js {{arg}}",
        "perl5.36-x86_64-linux-gnu /opt/tool.pl {{arg}}",
        "jq '.[$v]' --arg v {{arg}}",
        "jq '.a' --argjson v {{arg}} /srv/data.json",
        "jq '.a' {{arg}}",
    ],
)
def test_a_value_may_follow_an_interpreters_script_as_data(template: str) -> None:
    compile_command(template, specs_for(template), INTERPRETERS)


def test_a_refusal_of_a_value_as_code_names_its_parameter() -> None:
    refusal = refused("sqlite3 /srv/app.db {{arg}}", INTERPRETERS)
    assert refusal.parameter == "arg"
    assert "sqlite3" in refusal.message
    assert "IDP_PARAM_ARG" in refusal.message


def test_find_may_hand_its_files_to_a_script_as_arguments() -> None:
    allowlist = allowing("find", "sh", "python3")
    compile_command("find . -exec sh -c 'echo \"$1\"' _ {} \\;", [], allowlist)
    compile_command("find . -name '*.log' -exec python3 /opt/tools/scan.py {} +", [], allowlist)


def test_an_interpreter_behind_a_launcher_keeps_its_script_literal() -> None:
    allowlist = allowing("env", "nice", "sh")
    refusal = refused("env nice sh -c 'echo {{x}}'", allowlist)
    assert refusal.rule == "placeholder_in_script"
    compile_command("env nice sh -c 'echo \"$IDP_PARAM_X\"'", [spec("x")], allowlist)


def test_a_value_cannot_change_which_argument_a_launcher_runs() -> None:
    duration = spec("n", allow_leading_dash=True)
    argv = compile_command("timeout {{n}} echo hi", [duration], WITH_LAUNCHERS)
    assert render_command(argv, [duration], {"n": "5"}).argv == ["timeout", "5", "echo", "hi"]
    with pytest.raises(Refusal) as refusal:
        render_command(argv, [duration], {"n": "-k"})  # "echo" its value, "hi" the duration
    assert refusal.value.rule == "launcher_structure"


# Item 3: a leading dash comes from the template or from a parameter that allows one.


@pytest.mark.parametrize(
    ("template", "values"),
    [
        ("echo {{a}}n hello", {"a": "-"}),
        ("echo {{a}}{{b}}", {"a": "-", "b": "n"}),
        ("echo {{a}}{{b}}", {"a": "", "b": "-n"}),
        ("echo {{a}}{{b}} x", {"a": "-", "b": "-"}),
        ("echo {{a}}", {"a": "--help"}),
        ("echo {{a}}={{b}}", {"a": "--output", "b": "x"}),
    ],
)
def test_a_value_can_never_make_an_option(template: str, values: dict[str, str]) -> None:
    specs = [spec(name, required=False) for name in values]
    argv = compile_command(template, specs, DEFAULTS)
    normalized, refusals = validate_values(specs, values)
    assert refusals == []
    with pytest.raises(Refusal) as refusal:
        render_command(argv, specs, normalized)
    assert refusal.value.rule == "leading_dash"
    assert refusal.value.parameter in values


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("echo -{{a}}", {"a": "n"}, "-n"),
        ("echo {{a}}-x", {"a": ""}, "-x"),
        ("echo --name={{a}}", {"a": "-v"}, "--name=-v"),
        ("echo x{{a}}", {"a": "-n"}, "x-n"),
    ],
)
def test_a_dash_written_in_the_template_stays_allowed(
    template: str, values: dict[str, str], expected: str
) -> None:
    specs = [spec(name, required=False) for name in values]
    argv = compile_command(template, specs, DEFAULTS)
    assert render_command(argv, specs, values).argv[1] == expected


@pytest.mark.parametrize(
    ("template", "values"),
    [
        ("curl -d {{a}} https://example.com/", {"a": "@/proc/self/environ"}),
        ("curl --data-binary {{a}} https://example.com/", {"a": "@-"}),
        ("curl -H {{a}} https://example.com/", {"a": "@/proc/self/environ"}),
        ("gcc {{a}}", {"a": "@/tmp/options"}),
        ("echo {{a}}{{b}}", {"a": "", "b": "@x"}),
        ("echo {{a}}{{b}}", {"a": "@", "b": "x"}),
    ],
)
def test_a_value_can_never_name_a_file_read_in_its_place(
    template: str, values: dict[str, str]
) -> None:
    specs = [spec(name, required=False) for name in values]
    argv = compile_command(template, specs, allowing("curl", "gcc", "echo"))
    with pytest.raises(Refusal) as refusal:
        render_command(argv, specs, values)
    assert refusal.value.rule == "leading_at"
    assert refusal.value.parameter in values


def test_an_at_sign_written_in_the_template_or_allowed_stays() -> None:
    specs = [spec("a", allow_leading_dash=True), spec("b")]
    argv = compile_command("echo {{a}} @{{b}} x@{{b}}", specs, DEFAULTS)
    rendered = render_command(argv, specs, {"a": "@alice", "b": "@bob"}).argv
    assert rendered == ["echo", "@alice", "@@bob", "x@@bob"]


def test_a_parameter_that_allows_a_leading_dash_may_start_an_option() -> None:
    specs = [spec("a", allow_leading_dash=True), spec("b")]
    argv = compile_command("echo {{a}}{{b}}", specs, DEFAULTS)
    assert render_command(argv, specs, {"a": "-", "b": "n"}).argv == ["echo", "-n"]


# Item 12: definitions that can never work are refused when they are saved.


@pytest.mark.parametrize(
    ("template", "rule"),
    [
        ("echo {{x", "malformed_placeholder"),
        ("echo x}}", "malformed_placeholder"),
        ("echo {{X}}", "malformed_placeholder"),
        ("echo {{}}", "malformed_placeholder"),
        ("echo {{x-y}}", "malformed_placeholder"),
        ("echo '{{ x'", "malformed_placeholder"),
        ("echo a | grep b", "shell_operator"),
        ("echo a > /tmp/out", "shell_operator"),
        ("echo a >> /tmp/out", "shell_operator"),
        ("echo a 2>&1", "shell_operator"),
        ("echo a && echo b", "shell_operator"),
        ("echo a || echo b", "shell_operator"),
        ("echo a ; echo b", "shell_operator"),
        ("echo a &", "shell_operator"),
        ("echo a < /etc/passwd", "shell_operator"),
    ],
)
def test_definitions_that_cannot_work_are_refused(template: str, rule: str) -> None:
    with pytest.raises(Refusal) as refusal:
        compile_command(template, [spec("x", required=False)], DEFAULTS)
    assert refusal.value.rule == rule


def test_spaces_inside_a_placeholder_are_accepted() -> None:
    argv = compile_command("echo {{ x }} '{{x }}'", [spec("x")], DEFAULTS)
    assert argv == ["echo", "{{x}}", "{{x}}"]
    assert render_command(argv, [spec("x")], {"x": "hi"}).argv == ["echo", "hi", "hi"]


def test_quoted_shell_syntax_is_a_literal_argument() -> None:
    argv = compile_command("echo '|' \"&&\" '>' \\;", [], DEFAULTS)
    assert argv == ["echo", "|", "&&", ">", ";"]


def test_a_declared_parameter_must_be_used() -> None:
    with pytest.raises(Refusal) as refusal:
        compile_command("echo hi", [spec("x")], DEFAULTS)
    assert (refusal.value.rule, refusal.value.parameter) == ("unused_parameter", "x")
    assert "IDP_PARAM_X" in refusal.value.message
    compile_command("printenv IDP_PARAM_X", [spec("x")], DEFAULTS)


RUNNERS = allowing(
    *("tar", "rsync", "zip", "wget", "scp", "sftp", "man", "git", "nice"),
    *("sort", "split", "diff3", "sdiff", "install", "ssh-copy-id"),
)


@pytest.mark.parametrize(
    "template",
    [
        "tar -I {{cmd}} -cf /srv/a.tar /etc/hostname",  # ran any program
        "tar -f /srv/a.tar -cI{{cmd}} /etc/hostname",
        "tar cIf {{cmd}} /srv/a.tar /etc/hostname",
        "tar --checkpoint=1 --checkpoint-action=exec={{cmd}} -cf /srv/a.tar x",  # a shell line
        "tar --to-com {{cmd}} -xf /srv/a.tar",
        "nice -n 5 tar -cf /srv/a.tar --use-compress-program={{cmd}} x",
        "rsync -e {{cmd}} a:b /srv/c",
        "rsync -avze {{cmd}} a:b /srv/c",
        "zip -T -TT {{cmd}} /srv/a.zip /etc/hostname",
        "wget -e {{cmd}} https://example.com/",
        "wget --use-askpass={{cmd}} https://example.com/",
        "scp -S {{cmd}} a:b /srv/c",
        "scp -o ProxyCommand={{cmd}} a:b /srv/c",
        "man -P {{cmd}} ls",
        "git -c {{cmd}} status",
        "git -c core.fsmonitor={{cmd}} status",
        "git ls-remote --upload-pack={{cmd}} /srv/repo",
        "git rebase -x {{cmd}} main",
        "sort --compress-program={{cmd}} -S 64K /srv/big.txt",  # ran any program
        "sort --compress {{cmd}} /srv/big.txt",
        "split -n 2 --filter={{cmd}} /etc/hostname",  # ran a shell line
        "split --fil {{cmd}} /etc/hostname",
        "diff3 --diff-program={{cmd}} /srv/a /srv/b /srv/c",
        "sdiff --diff-program {{cmd}} /srv/a /srv/b",
        "sftp -D {{cmd}} host",
        "scp -D {{cmd}} a:b /srv/c",
        "install -s --strip-program={{cmd}} /srv/a /srv/b",
        "ssh-copy-id -o ProxyCommand={{cmd}} host",  # passed on to ssh, which ran it
        "ssh-copy-id -o {{cmd}} host",
        "ssh-copy-id -F {{cmd}} host",
    ],
)
def test_a_value_never_becomes_a_program_an_option_runs(template: str) -> None:
    refused_when_saved_and_when_run(template, RUNNERS, "placeholder_as_command", cmd="id")


def test_those_programs_take_values_elsewhere() -> None:
    for template in [
        "tar -cf {{arg}} /etc/hostname",
        "tar cf {{arg}} /etc/hostname",
        "tar -I zstd -cf /srv/a.tar -- {{arg}}",
        "tar -xf /srv/a.tar --to-command=/usr/bin/md5sum {{arg}}",
        "rsync -av {{arg}} /srv/c",
        "git -c core.pager=cat log --author {{arg}}",
        "git -C /srv/repo show {{arg}}",
        "man {{arg}}",
        "sort -S 64K --compress-program=gzip {{arg}}",
        "split -n 2 --filter=gzip {{arg}}",
        "diff3 /srv/a /srv/b {{arg}}",
        "sftp -b {{arg}} host",
    ]:
        argv = compile_command(template, specs_for(template), RUNNERS)
        assert "names.txt" in render_command(argv, specs_for(template), {"arg": "names.txt"}).argv


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("perl -e 'print while <>' {{arg}}", "id|"),  # ran id through the shell
        ("perl -e 'print while <>' {{arg}}", "id |\n"),
        ("perl -e 'print while <>' {{arg}}", "| id"),
        ("perl -e 'print while <>' {{arg}}", " >/srv/app.db"),
        ("perl /opt/tool.pl {{arg}}", "+</srv/app.db"),
        ("perl -e 'print while <>' /srv/{{arg}}", "x;id|"),
    ],
)
def test_a_value_never_makes_perls_magic_open_run_a_command(template: str, value: str) -> None:
    argv = compile_command(template, specs_for(template), INTERPRETERS)
    with pytest.raises(Refusal) as refusal:
        render_command(argv, specs_for(template), {"arg": value})
    assert (refusal.value.rule, refusal.value.parameter) == ("value_as_open_mode", "arg")


CURL = allowing("curl", "env")


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("curl --data-urlencode {{arg}} https://example.com/", "a@/proc/self/environ"),  # sent
        ("curl --url-query {{arg}} https://example.com/", "q@/proc/self/environ"),
        ("curl -F {{arg}} https://example.com/", "note=@/etc/passwd"),
        ("curl -F note={{arg}} https://example.com/", "</etc/passwd"),
        ("curl -F note={{arg}} https://example.com/", "hi;headers=@/etc/passwd"),
        ("curl -sFnote={{arg}} https://example.com/", "@/etc/passwd"),
        ("env TZ=UTC curl --form note={{arg}} https://example.com/", "</etc/passwd"),
    ],
)
def test_a_value_never_makes_curl_read_a_file(template: str, value: str) -> None:
    argv = compile_command(template, specs_for(template), CURL)
    with pytest.raises(Refusal) as refusal:
        render_command(argv, specs_for(template), {"arg": value})
    assert (refusal.value.rule, refusal.value.parameter) == ("value_as_file", "arg")


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("curl -F note={{arg}} https://example.com/", "a@b <c>"),
        ("curl -F file=@{{arg}} https://example.com/", "/srv/report.txt"),
        ("curl --form-string note={{arg}} https://example.com/", "@x;headers=@y"),
        ("curl --data-urlencode q={{arg}} https://example.com/", "a@b"),
        ("curl --data-urlencode {{arg}} https://example.com/", "q=a@b"),
    ],
)
def test_curl_takes_values_as_text_or_files_the_template_names(template: str, value: str) -> None:
    argv = compile_command(template, specs_for(template), CURL)
    assert value in "".join(render_command(argv, specs_for(template), {"arg": value}).argv)


def test_perl_reads_other_values_as_files() -> None:
    argv = compile_command("perl -e 'print while <>' {{arg}}", [spec("arg")], INTERPRETERS)
    assert render_command(argv, [spec("arg")], {"arg": "a|b.log"}).argv[-1] == "a|b.log"


OTHER_NAMES = allowing(
    *("sh.distrib", "ipython3", "jrunscript", "julia", "guile", "R", "octave", "gnuplot"),
    *("duckdb", "sbcl", "racket", "pdflatex", "tex", "lldb", "groovy", "runghc"),
)


@pytest.mark.parametrize(
    "template",
    [
        "sh.distrib -c {{cmd}}",  # Debian's dash, diverted
        "ipython3 -c {{cmd}}",
        "jrunscript -e {{cmd}}",
        "julia -e {{cmd}}",
        "guile -c {{cmd}}",
        "groovy -e {{cmd}}",
        "runghc {{cmd}}",
        "R -e {{cmd}}",
        "R --no-save /srv/a.R {{cmd}}",
        "octave --eval {{cmd}}",
        "gnuplot -e {{cmd}}",
        "duckdb /srv/a.db {{cmd}}",
        "sbcl --eval {{cmd}}",
        "racket -e {{cmd}}",
        "pdflatex {{cmd}}",  # \write18
        "tex /srv/a.tex {{cmd}}",
        "lldb -o {{cmd}}",
    ],
)
def test_a_value_is_never_code_of_an_interpreter_under_another_name(template: str) -> None:
    assert refused(template, OTHER_NAMES).rule == "placeholder_in_script"
