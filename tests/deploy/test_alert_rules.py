"""The alert rules pass promtool's own tests, the PrometheusRule carries the same groups,
and the dashboard and the rules only read metrics the services export."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml
from prometheus_client import REGISTRY

from ._settings_env import REPO_ROOT

PROMETHEUS = REPO_ROOT / "deploy" / "prometheus"
RULES = PROMETHEUS / "rules.yml"
PROMTOOL = shutil.which("promtool")


@pytest.mark.parametrize(
    "command", [["check", "rules", "rules.yml"], ["test", "rules", "rules.test.yml"]]
)
def test_promtool_accepts_the_rules_and_their_tests_pass(command: list[str]) -> None:
    assert PROMTOOL is not None, "promtool comes with scripts/ensure-backing-services.sh"
    result = subprocess.run(
        [PROMTOOL, *command], cwd=PROMETHEUS, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_prometheus_rule_carries_the_same_groups() -> None:
    documents = list(
        yaml.safe_load_all((REPO_ROOT / "deploy/kustomize/base/monitoring.yaml").read_text())
    )
    rule = next(document for document in documents if document["kind"] == "PrometheusRule")
    assert rule["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]


def _exported_metric_names() -> set[str]:
    import datasource_svc.app  # noqa: F401  (each module registers its metrics)
    import executor_worker.app  # noqa: F401
    import operation_svc.app  # noqa: F401
    import panel_svc.app  # noqa: F401

    names = set()
    for family in REGISTRY.collect():
        names.update({family.name, f"{family.name}_total", f"{family.name}_bucket"})
    return names


def _metric_names_in(expression: str) -> set[str]:
    return set(re.findall(r"\b(idp_[a-z_]+)", expression))


def test_the_rules_and_the_dashboard_read_only_metrics_that_exist() -> None:
    exported = _exported_metric_names()
    expressions = [
        rule["expr"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
    ]
    dashboard = (REPO_ROOT / "deploy/grafana/dashboards/idp.json").read_text()
    expressions += re.findall(r'"expr": "((?:[^"\\]|\\.)*)"', dashboard)
    used = set().union(*(_metric_names_in(expression) for expression in expressions))
    assert used, "no idp_ metric found"
    assert used <= exported, sorted(used - exported)


# histogram_quantile(q, ... NAME_bucket ...) > threshold
QUANTILE_ABOVE = re.compile(
    r"histogram_quantile\(.*?\b(idp_[a-z_]+)_bucket\b.*\)\s*>\s*([0-9.]+)", re.S
)


def test_a_quantile_rule_s_threshold_is_below_its_histogram_s_highest_bucket() -> None:
    """A quantile falling in +Inf reads as the highest finite bound: a threshold at or above
    it is never passed, whatever the waits (IdpMessagesWaitLong's 60 s over a top of 30)."""
    _exported_metric_names()  # every service's metrics registered
    rules = [
        rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]
    ]
    checked = 0
    for rule in rules:
        for name, threshold in QUANTILE_ABOVE.findall(rule["expr"]):
            bounds = REGISTRY._names_to_collectors[name]._upper_bounds  # type: ignore[attr-defined]
            assert max(bound for bound in bounds if bound != float("inf")) > float(threshold), rule[
                "alert"
            ]
            checked += 1
    assert checked, "no quantile rule found"


def test_compose_scrapes_each_service_under_the_job_the_rules_name() -> None:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]
    }
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())["services"]
    for job, targets in jobs.items():
        service, port = targets[0].split(":")
        assert job == f"idp-{service}"
        assert service in compose
        assert f"{port}:{port}" in compose[service].get("ports", [f"{port}:{port}"])
