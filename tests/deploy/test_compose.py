"""docker-compose.yml agrees with the Dockerfile, the settings classes and the topology."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from console.config import ConsoleSettings
from datasource_svc.config import DatasourceSettings
from executor_worker.config import WorkerSettings
from idp_common.settings import DatabaseServiceSettings
from operation_svc.config import OperationSettings
from panel_svc.config import PanelSettings

from ._settings_env import (
    DATABASE_SERVICES,
    DEPLOYABLES,
    REPO_ROOT,
    SETTINGS_BY_SERVICE,
    WORKER_CAPABILITIES,
    compose_interpolate,
    default_port,
    load_settings,
    rejected_env_names,
)

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
DOCKERFILE = REPO_ROOT / "Dockerfile"
INFRA_WITH_HEALTHCHECK = ("postgres", "redis", "elasticmq")
_FROM_AS = re.compile(r"^\s*FROM\s+\S+\s+AS\s+(?P<name>\S+)\s*$", re.IGNORECASE | re.MULTILINE)

Service = dict[str, Any]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    with COMPOSE_FILE.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Service]:
    services = compose["services"]
    assert isinstance(services, dict)
    assert services
    return services


def _target(service: Service) -> str | None:
    build = service.get("build")
    if isinstance(build, dict):
        target = build.get("target")
        return str(target) if target is not None else None
    return None


def _environment(service: Service) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        pairs = (item.split("=", 1) if "=" in item else (item, "") for item in env)
        env = dict(pairs)
    assert isinstance(env, dict)
    return {str(k): "" if v is None else compose_interpolate(str(v)) for k, v in env.items()}


def _command(service: Service) -> list[str]:
    command = service.get("command")
    return command.split() if isinstance(command, str) else list(command or [])


def _published_ports(service: Service) -> list[tuple[int, int]]:
    """(published, container) pairs from short ("[ip:]host:container") or long syntax."""
    pairs: list[tuple[int, int]] = []
    for entry in service.get("ports", []):
        if isinstance(entry, dict):
            pairs.append((int(entry["published"]), int(entry["target"])))
            continue
        parts = str(entry).split("/")[0].split(":")
        assert len(parts) >= 2, f"port {entry!r} is not published"
        pairs.append((int(parts[-2]), int(parts[-1])))
    return pairs


def _built_services(services: dict[str, Service]) -> dict[str, Service]:
    return {name: svc for name, svc in services.items() if _target(svc) is not None}


def _dockerfile_targets() -> set[str]:
    return {m.group("name") for m in _FROM_AS.finditer(DOCKERFILE.read_text(encoding="utf-8"))}


def test_every_service_has_image_or_build(services: dict[str, Service]) -> None:
    missing = [name for name, svc in services.items() if "image" not in svc and "build" not in svc]
    assert missing == []


def test_third_party_images_are_pinned(services: dict[str, Service]) -> None:
    for name, svc in services.items():
        if "build" in svc:
            continue
        image = str(svc["image"])
        tag = image.rsplit("/", 1)[-1].partition(":")[2]
        assert tag, f"{name}: pin {image} to a tag"
        assert tag != "latest", f"{name}: pin {image} to a tag"
    assert services["elasticmq"]["image"].startswith("softwaremill/elasticmq-native:1.6.")


def test_dockerfile_has_every_referenced_target(services: dict[str, Service]) -> None:
    targets = _dockerfile_targets()
    assert set(SETTINGS_BY_SERVICE) <= targets
    for name, svc in _built_services(services).items():
        build = svc["build"]
        assert (REPO_ROOT / build.get("context", ".")).resolve() == REPO_ROOT, name
        assert build.get("dockerfile", "Dockerfile") == "Dockerfile", name
        assert _target(svc) in targets, f"{name}: no `FROM ... AS {_target(svc)}` in Dockerfile"


def test_dockerfile_installs_each_package_from_the_lock() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "pip install" in text
    assert "uv==" in text
    for service in SETTINGS_BY_SERVICE:
        assert f"uv sync --frozen --no-dev --no-editable --package {service}" in text
        assert f'CMD ["{service}", "serve"]' in text
    assert text.count("HEALTHCHECK") >= len(SETTINGS_BY_SERVICE)


def test_images_run_as_non_root_but_the_workers_which_gives_each_run_a_uid() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    stages = dict(re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)\n(.*?)(?=^FROM|\Z)", text, re.M | re.S))
    assert re.search(r"^USER\s+10001:10001$", stages["runtime"], re.M)
    for service in SETTINGS_BY_SERVICE:
        users = re.findall(r"^USER\s+(\S+)", stages[service], re.M)
        assert users == (["0:0"] if service == "executor-worker" else []), service


def test_the_worker_keeps_only_the_capabilities_a_uid_per_run_takes(
    services: dict[str, Service],
) -> None:
    for name, svc in _built_services(services).items():
        if name == "executor-worker":
            assert svc["cap_drop"] == ["ALL"]
            assert set(svc["cap_add"]) == WORKER_CAPABILITIES
            assert "no-new-privileges:true" in svc["security_opt"]
        else:
            assert "cap_add" not in svc, name


def test_every_app_service_is_in_compose(services: dict[str, Service]) -> None:
    for app in SETTINGS_BY_SERVICE:
        assert app in services, f"{app} missing from docker-compose.yml"
        assert _target(services[app]) == app
        assert _command(services[app]) == [app, "serve"]


@pytest.mark.parametrize("app", SETTINGS_BY_SERVICE)
def test_published_port_is_the_settings_default(services: dict[str, Service], app: str) -> None:
    port = default_port(SETTINGS_BY_SERVICE[app])
    assert _published_ports(services[app]) == [(port, port)]


def test_env_names_are_accepted_by_the_settings_class(services: dict[str, Service]) -> None:
    built = _built_services(services)
    assert set(built) >= set(DEPLOYABLES)
    for name, svc in built.items():
        settings_cls = DEPLOYABLES[str(_target(svc))]
        env = _environment(svc)
        assert rejected_env_names(settings_cls, env) == [], f"{name}: unknown variables"


@pytest.mark.parametrize("app", SETTINGS_BY_SERVICE)
def test_env_values_load_into_settings(
    services: dict[str, Service], app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_cls = SETTINGS_BY_SERVICE[app]
    settings = load_settings(settings_cls, _environment(services[app]), monkeypatch)
    assert settings.host == "0.0.0.0"
    assert settings.port == default_port(settings_cls)
    assert settings.environment == "development"
    assert settings.sqs.endpoint_url == "http://elasticmq:9324"
    assert settings.sqs.create_queues is False, "ElasticMQ creates the queues from its conf"
    assert settings.auth.jwt_secret is not None
    assert len(settings.auth.signing_secret()) >= 32
    assert _environment(services[app])["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4318"


@pytest.mark.parametrize("app", DATABASE_SERVICES)
def test_each_service_uses_its_own_postgres_database(
    services: dict[str, Service], app: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(SETTINGS_BY_SERVICE[app], _environment(services[app]), monkeypatch)
    assert isinstance(settings, DatabaseServiceSettings)
    url = urlsplit(settings.database_url)
    assert url.scheme == "postgresql+asyncpg"
    assert url.hostname == "postgres"
    database = url.path.lstrip("/")
    assert database == app.removesuffix("-svc")
    init_sql = (REPO_ROOT / "deploy" / "postgres" / "init-databases.sql").read_text()
    assert re.search(rf"CREATE DATABASE {database}\b", init_sql)


def test_postgres_runs_the_init_script(services: dict[str, Service]) -> None:
    volumes = [str(v) for v in services["postgres"].get("volumes", [])]
    assert any(
        v.startswith("./deploy/postgres/init-databases.sql:/docker-entrypoint-initdb.d/")
        for v in volumes
    )


def test_datasource_uses_redis(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _environment(services["datasource-svc"])
    settings = load_settings(SETTINGS_BY_SERVICE["datasource-svc"], env, monkeypatch)
    assert isinstance(settings, DatasourceSettings)
    assert urlsplit(settings.redis_url or "").hostname == "redis"
    assert services["datasource-svc"]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_worker_claims_through_operation_svc(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = _environment(services["executor-worker"])
    settings = load_settings(SETTINGS_BY_SERVICE["executor-worker"], env, monkeypatch)
    assert isinstance(settings, WorkerSettings)
    url = urlsplit(settings.operation_api_url)
    assert url.hostname == "operation-svc"
    assert url.port == default_port(SETTINGS_BY_SERVICE["operation-svc"])
    depends = services["executor-worker"]["depends_on"]
    assert depends["operation-svc"]["condition"] == "service_healthy"


def test_panel_and_operation_svc_call_each_other_by_service_name(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    """panel-svc checks a panel's template at operation-svc; operation-svc submits panel
    schedules to panel-svc."""
    panel = load_settings(
        SETTINGS_BY_SERVICE["panel-svc"], _environment(services["panel-svc"]), monkeypatch
    )
    operation = load_settings(
        SETTINGS_BY_SERVICE["operation-svc"], _environment(services["operation-svc"]), monkeypatch
    )
    assert isinstance(panel, PanelSettings)
    assert isinstance(operation, OperationSettings)
    for url, service in (
        (panel.operation_api_url, "operation-svc"),
        (operation.panel_api_url, "panel-svc"),
    ):
        assert urlsplit(url).hostname == service
        assert urlsplit(url).port == default_port(SETTINGS_BY_SERVICE[service])


def test_healthchecks(services: dict[str, Service]) -> None:
    for name in (*INFRA_WITH_HEALTHCHECK, *SETTINGS_BY_SERVICE):
        healthcheck = services[name].get("healthcheck")
        assert healthcheck, f"{name} needs a healthcheck"
        assert healthcheck.get("test"), f"{name} needs a healthcheck"
        assert not healthcheck.get("disable", False)
    for app in SETTINGS_BY_SERVICE:
        probe = " ".join(services[app]["healthcheck"]["test"])
        assert f"127.0.0.1:{default_port(SETTINGS_BY_SERVICE[app])}/healthz" in probe
    assert "/health" in " ".join(services["elasticmq"]["healthcheck"]["test"])


def test_elasticmq_mounts_the_repository_conf(services: dict[str, Service]) -> None:
    elasticmq = services["elasticmq"]
    volumes = [str(v) for v in elasticmq.get("volumes", [])]
    assert any(v.split(":")[:2] == ["./elasticmq.conf", "/opt/elasticmq.conf"] for v in volumes)
    assert (9324, 9324) in _published_ports(elasticmq)


@pytest.mark.parametrize("app", SETTINGS_BY_SERVICE)
def test_app_dependencies(services: dict[str, Service], app: str) -> None:
    depends = services[app]["depends_on"]
    assert isinstance(depends, dict), "use the long form with conditions"
    assert depends["elasticmq"]["condition"] == "service_healthy"
    if app in DATABASE_SERVICES:
        assert depends["postgres"]["condition"] == "service_healthy"
        migrations = [
            name
            for name, dep in depends.items()
            if dep.get("condition") == "service_completed_successfully"
        ]
        assert len(migrations) == 1, f"{app} must wait for its migration"
        migrate = services[migrations[0]]
        assert _target(migrate) == app
        assert _command(migrate) == [app, "migrate"]
        assert str(migrate.get("restart")) == "no"
        assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
        assert _environment(migrate) == _environment(services[app]), "same settings as the app"


def test_every_depends_on_names_a_service(services: dict[str, Service]) -> None:
    for name, svc in services.items():
        depends = svc.get("depends_on") or {}
        assert set(depends) <= set(services), f"{name} depends on an unknown service"


def test_jaeger_accepts_otlp(services: dict[str, Service]) -> None:
    jaeger = services["jaeger"]
    assert str(jaeger["environment"]["COLLECTOR_OTLP_ENABLED"]).lower() == "true"
    published = {host for host, _ in _published_ports(jaeger)}
    assert {4317, 4318, 16686} <= published


def test_the_console_proxies_to_each_service_and_signs_in_as_they_verify(
    services: dict[str, Service], monkeypatch: pytest.MonkeyPatch
) -> None:
    console = services["console"]
    assert _target(console) == "console"
    assert _command(console) == ["console", "serve"]
    settings = load_settings(ConsoleSettings, _environment(console), monkeypatch)
    assert (settings.host, settings.port, settings.environment) == ("0.0.0.0", 8000, "development")
    assert _published_ports(console) == [(8000, 8000)]
    for service, url in settings.upstreams().items():
        app = f"{service}-svc"
        assert url == f"http://{app}:{default_port(SETTINGS_BY_SERVICE[app])}"
        assert console["depends_on"][app]["condition"] == "service_healthy"
    # Its development sign-in mints the tokens the services verify.
    panel = load_settings(
        SETTINGS_BY_SERVICE["panel-svc"], _environment(services["panel-svc"]), monkeypatch
    )
    assert settings.auth.signing_secret() == panel.auth.signing_secret()
    assert (settings.auth.jwt_issuer, settings.auth.jwt_audience) == (
        panel.auth.jwt_issuer,
        panel.auth.jwt_audience,
    )
    assert "127.0.0.1:8000/healthz" in " ".join(console["healthcheck"]["test"])
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert "uv sync --frozen --no-dev --no-editable --package console" in dockerfile
    assert 'CMD ["console", "serve"]' in dockerfile
    assert "npm ci" in dockerfile
