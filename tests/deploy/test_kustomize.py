"""deploy/kustomize agrees with the settings classes, the topology and itself.

The checks are static: the test reads the kustomizations, follows their resources, and
applies the few transformations the overlays use (configMapGenerator merges, JSON 6902
and merge patches, images, replicas) to get each overlay's effective objects. When
`kubectl` is on PATH, the same view is also compared with `kubectl kustomize`.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from console.config import ConsoleSettings
from console.routes import OWNERS
from idp_common.messaging import topology

from ._settings_env import (
    DATABASE_SERVICES,
    DEPLOYABLES,
    FRONTENDS,
    REPO_ROOT,
    SETTINGS_BY_SERVICE,
    WORKER_CAPABILITIES,
    default_port,
    load_settings,
    load_yaml_documents,
    rejected_env_names,
)

KUSTOMIZE = REPO_ROOT / "deploy" / "kustomize"
BASE = KUSTOMIZE / "base"
DEV = KUSTOMIZE / "overlays" / "dev"
PRODUCTION = KUSTOMIZE / "overlays" / "production"
BUILDS = {"base": BASE, "dev": DEV, "production": PRODUCTION}
SECRET_NAME = "idp-secrets"
WORKER = "executor-worker"
APP_LABEL = "app.kubernetes.io/name"

Doc = dict[str, Any]


# --------------------------------------------------------------------------- loading
def _kustomization(directory: Path) -> Doc:
    (doc,) = load_yaml_documents(directory / "kustomization.yaml")
    assert isinstance(doc, dict)
    return doc


def _bases(directory: Path) -> list[Path]:
    return [
        (directory / entry).resolve()
        for entry in _kustomization(directory).get("resources", [])
        if (directory / entry).is_dir()
    ]


def _own_resources(directory: Path) -> list[Doc]:
    docs: list[Doc] = []
    for entry in _kustomization(directory).get("resources", []):
        path = directory / entry
        if path.is_file():
            docs.extend(doc for doc in load_yaml_documents(path) if isinstance(doc, dict))
    return docs


def _split_literal(literal: str) -> tuple[str, str]:
    key, sep, value = literal.partition("=")
    assert sep, f"literal {literal!r} has no '='"
    return key, value


def _generated(directory: Path, kind: str) -> dict[str, dict[str, str]]:
    """Data of every configMapGenerator/secretGenerator, bases first, merges applied."""
    data: dict[str, dict[str, str]] = {}
    for base in _bases(directory):
        data.update(copy.deepcopy(_generated(base, kind)))
    for generator in _kustomization(directory).get(kind, []):
        entries: dict[str, str] = dict(_split_literal(lit) for lit in generator.get("literals", []))
        for file_entry in generator.get("files", []):
            key, _, rel = file_entry.rpartition("=") if "=" in file_entry else ("", "", file_entry)
            entries[key or Path(rel).name] = (directory / rel).read_text(encoding="utf-8")
        behavior = generator.get("behavior", "create")
        name = generator["name"]
        if behavior == "create":
            assert name not in data, f"{directory}: {name} generated twice"
            data[name] = entries
        elif behavior == "merge":
            assert name in data, f"{directory}: merge into unknown {name}"
            data[name] = {**data[name], **entries}
        else:
            assert behavior == "replace"
            data[name] = entries
    return data


def _json_pointer(path: str) -> list[str]:
    return [part.replace("~1", "/").replace("~0", "~") for part in path.lstrip("/").split("/")]


def _apply_json6902(doc: Doc, operations: list[Doc]) -> None:
    for op in operations:
        *parents, last = _json_pointer(op["path"])
        node: Any = doc
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        key: Any = int(last) if isinstance(node, list) else last
        if op["op"] == "remove":
            del node[key]
        elif op["op"] == "replace":
            assert (key < len(node)) if isinstance(node, list) else (key in node), op
            node[key] = copy.deepcopy(op["value"])
        elif op["op"] == "add":
            if isinstance(node, list):
                node.insert(key, copy.deepcopy(op["value"]))
            else:
                node[key] = copy.deepcopy(op["value"])
        else:
            raise AssertionError(f"unsupported patch op {op['op']}")


def _merge(target: Doc, patch: Doc) -> None:
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def _matches(doc: Doc, target: Doc) -> bool:
    api_group = doc["apiVersion"].rpartition("/")[0]
    return bool(
        doc["kind"] == target.get("kind", doc["kind"])
        and doc["metadata"]["name"] == target.get("name", doc["metadata"]["name"])
        and api_group == target.get("group", api_group)
    )


def _effective(directory: Path) -> list[Doc]:
    """Objects of a kustomization after its own transformations (no namespace/hashes)."""
    docs = [doc for base in _bases(directory) for doc in _effective(base)]
    docs += copy.deepcopy(_own_resources(directory))
    kustomization = _kustomization(directory)
    for patch in kustomization.get("patches", []):
        if "path" in patch:
            for patch_doc in load_yaml_documents(directory / patch["path"]):
                assert isinstance(patch_doc, dict)
                selector = {"kind": patch_doc["kind"], "name": patch_doc["metadata"]["name"]}
                hits = [doc for doc in docs if _matches(doc, selector)]
                assert len(hits) == 1, f"{patch['path']}: patch matches {len(hits)} objects"
                _merge(hits[0], patch_doc)
        else:
            operations = yaml.safe_load(patch["patch"])
            assert isinstance(operations, list), "inline patches are JSON 6902 operations"
            hits = [doc for doc in docs if _matches(doc, patch["target"])]
            assert len(hits) == 1, f"{patch['target']}: patch matches {len(hits)} objects"
            _apply_json6902(hits[0], operations)
    for replica in kustomization.get("replicas", []):
        (deployment,) = [
            d
            for d in docs
            if d["kind"] == "Deployment" and d["metadata"]["name"] == replica["name"]
        ]
        deployment["spec"]["replicas"] = replica["count"]
    images = {image["name"]: image for image in kustomization.get("images", [])}
    for container in (c for doc in docs for c in _containers(doc)):
        name, _, tag = container["image"].partition(":")
        if name in images:
            image = images[name]
            container["image"] = f"{image.get('newName', name)}:{image.get('newTag', tag)}"
    return docs


def _pod_spec(doc: Doc) -> Doc | None:
    if doc["kind"] in ("Deployment", "Job", "StatefulSet", "DaemonSet"):
        spec = doc["spec"]["template"]["spec"]
        assert isinstance(spec, dict)
        return spec
    return None


def _containers(doc: Doc) -> list[Doc]:
    pod = _pod_spec(doc)
    if pod is None:
        return []
    return [*pod.get("initContainers", []), *pod["containers"]]


def _of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    found = [doc for doc in docs if doc["kind"] == kind]
    by_name = {doc["metadata"]["name"]: doc for doc in found}
    assert len(by_name) == len(found), f"duplicate {kind} names"
    return by_name


def _app_of(doc: Doc) -> str:
    return str(doc["metadata"]["labels"][APP_LABEL])


def _container_env(
    container: Doc, configmaps: dict[str, dict[str, str]], secrets: dict[str, dict[str, str]]
) -> dict[str, str]:
    """The variables a container gets. Secret values are taken from `secrets` when known,
    else a placeholder that passes the production secret checks: 32 bytes in base64, long
    enough for a JWT secret and shaped like a sealing key."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ref = source.get("configMapRef") or source.get("secretRef")
        assert ref, f"unsupported envFrom {source}"
        table = configmaps if "configMapRef" in source else secrets
        env.update(table.get(ref["name"], {}))
    for item in container.get("env", []):
        name = item["name"]
        if "value" in item:
            env[name] = str(item["value"])
            continue
        value_from = item["valueFrom"]
        if "secretKeyRef" in value_from:
            ref = value_from["secretKeyRef"]
            known = secrets.get(ref["name"], {})
            if ref["key"] in known:
                env[name] = known[ref["key"]]
            elif not (ref.get("optional") and ref["name"] in secrets):
                env[name] = base64.b64encode(hashlib.sha256(ref["key"].encode()).digest()).decode()
        elif "configMapKeyRef" in value_from:
            ref = value_from["configMapKeyRef"]
            env[name] = configmaps[ref["name"]][ref["key"]]
        else:
            env[name] = "from-downward-api"
    return env


@pytest.fixture(scope="module", params=list(BUILDS), ids=list(BUILDS))
def build(request: pytest.FixtureRequest) -> tuple[str, list[Doc]]:
    return request.param, _effective(BUILDS[request.param])


# ----------------------------------------------------------------------------- tests
def test_every_yaml_file_parses() -> None:
    files = sorted(KUSTOMIZE.rglob("*.yaml")) + sorted(KUSTOMIZE.rglob("*.yml"))
    assert len(files) >= 10
    for path in files:
        docs = load_yaml_documents(path)
        assert docs, f"{path} is empty"
        for doc in docs:
            assert isinstance(doc, dict), f"{path}: every document is an object"
            assert "apiVersion" in doc, f"{path}: apiVersion"
            assert "kind" in doc, f"{path}: kind"


def test_kustomizations_reference_existing_files() -> None:
    kustomizations = sorted(KUSTOMIZE.rglob("kustomization.yaml"))
    assert {p.parent for p in kustomizations} == set(BUILDS.values())
    for path in kustomizations:
        directory = path.parent
        kustomization = _kustomization(directory)
        referenced: list[str] = list(kustomization.get("resources", []))
        referenced += [p["path"] for p in kustomization.get("patches", []) if "path" in p]
        for kind in ("configMapGenerator", "secretGenerator"):
            for generator in kustomization.get(kind, []):
                referenced += [f.rpartition("=")[2] for f in generator.get("files", [])]
                referenced += list(generator.get("envs", []))
        for entry in referenced:
            target = (directory / entry).resolve()
            assert target.exists(), f"{path}: {entry} does not exist"
            if target.is_dir():
                assert (target / "kustomization.yaml").is_file(), f"{path}: {entry}"
            else:
                assert target.is_relative_to(directory.resolve()), (
                    f"{path}: {entry} is outside the kustomization root"
                )
        # Every manifest in the directory is used by its kustomization.
        used = {(directory / entry).resolve() for entry in referenced}
        for manifest in directory.glob("*.yaml"):
            assert manifest == path or manifest.resolve() in used, f"{manifest} is unused"


def test_base_is_namespace_agnostic() -> None:
    assert "namespace" not in _kustomization(BASE)
    for doc in _own_resources(BASE):
        assert "namespace" not in doc["metadata"], doc["metadata"]["name"]
        assert doc["kind"] not in ("Secret", "Namespace"), "the base holds no secrets"
    assert "secretGenerator" not in _kustomization(BASE)


def test_one_deployment_per_service(build: tuple[str, list[Doc]]) -> None:
    _, docs = build
    apps = {
        name for name, doc in _of_kind(docs, "Deployment").items() if _app_of(doc) != "elasticmq"
    }
    assert apps == set(DEPLOYABLES)
    services = _of_kind(docs, "Service")
    for app, settings_cls in DEPLOYABLES.items():
        (port,) = services[app]["spec"]["ports"]
        assert port["port"] == default_port(settings_cls)
        assert services[app]["spec"]["selector"] == {APP_LABEL: app}


def test_app_deployments_probe_healthz_and_readyz(build: tuple[str, list[Doc]]) -> None:
    _, docs = build
    deployments = _of_kind(docs, "Deployment")
    for app, settings_cls in DEPLOYABLES.items():
        deployment = deployments[app]
        selector = deployment["spec"]["selector"]["matchLabels"]
        assert selector.items() <= deployment["spec"]["template"]["metadata"]["labels"].items()
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["command"] == [app, "serve"]
        (port,) = container["ports"]
        assert port["containerPort"] == default_port(settings_cls)
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            http_get = container[probe]["httpGet"]
            assert http_get["path"] == path, f"{app} {probe}"
            assert http_get["port"] in (port["containerPort"], port.get("name")), f"{app} {probe}"


def test_every_deployment_has_probes(build: tuple[str, list[Doc]]) -> None:
    _, docs = build
    for name, deployment in _of_kind(docs, "Deployment").items():
        for container in _containers(deployment):
            assert "livenessProbe" in container, name
            assert "readinessProbe" in container, name


def test_pods_are_hardened(build: tuple[str, list[Doc]]) -> None:
    _, docs = build
    workloads = [doc for doc in docs if _pod_spec(doc) is not None]
    assert workloads
    for doc in workloads:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        pod = _pod_spec(doc) or {}
        pod_security = pod.get("securityContext", {})
        # Root so that each run gets a uid of its own, with only what that takes.
        worker = name == "Deployment/executor-worker"
        for container in _containers(doc):
            security = container.get("securityContext", {})
            non_root = security.get("runAsNonRoot", pod_security.get("runAsNonRoot"))
            assert non_root is not worker, name
            assert (security.get("runAsUser", pod_security.get("runAsUser")) == 0) is worker, name
            assert security.get("allowPrivilegeEscalation") is False, name
            assert security.get("readOnlyRootFilesystem") is True, name
            capabilities = security.get("capabilities", {})
            assert capabilities.get("drop") == ["ALL"], name
            assert set(capabilities.get("add", [])) == (WORKER_CAPABILITIES if worker else set())
            assert "privileged" not in security or security["privileged"] is False, name
            resources = container.get("resources", {})
            assert {"cpu", "memory"} <= set(resources.get("requests", {})), name
            assert "memory" in resources.get("limits", {}), name
            assert ":latest" not in container["image"], name
        # A read-only root needs somewhere to write temporary files.
        mounts = {m["mountPath"] for c in _containers(doc) for m in c.get("volumeMounts", [])}
        assert "/tmp" in mounts, name


def test_env_names_are_accepted_by_the_settings_class(build: tuple[str, list[Doc]]) -> None:
    label, docs = build
    configmaps = _generated(BUILDS[label], "configMapGenerator")
    for doc in docs:
        if _pod_spec(doc) is None or _app_of(doc) not in DEPLOYABLES:
            continue
        settings_cls = DEPLOYABLES[_app_of(doc)]
        for container in _containers(doc):
            names = {item["name"] for item in container.get("env", [])}
            for source in container.get("envFrom", []):
                ref = source["configMapRef"]
                assert ref["name"] in configmaps, f"{ref['name']} is not generated"
                names |= set(configmaps[ref["name"]])
            rejected = rejected_env_names(settings_cls, names)
            assert rejected == [], f"{doc['kind']}/{doc['metadata']['name']}: unknown variables"


def test_secrets_are_referenced_not_written(build: tuple[str, list[Doc]]) -> None:
    label, docs = build
    sensitive = re.compile(r"(SECRET|TOKEN|PASSWORD|DATABASE_URL|REDIS_URL)$")
    for doc in docs:
        for container in _containers(doc):
            for item in container.get("env", []):
                if sensitive.search(item["name"]):
                    assert "value" not in item, f"{item['name']} must come from a Secret"
                    assert item["valueFrom"]["secretKeyRef"]["name"] == SECRET_NAME
    # The only credential allowed in a ConfigMap: ElasticMQ's dummy key in dev.
    allowed = {"SQS_SECRET_ACCESS_KEY"} if label == "dev" else set()
    for name, data in _generated(BUILDS[label], "configMapGenerator").items():
        leaked = {key for key in data if sensitive.search(key)} - allowed
        assert leaked == set(), f"ConfigMap {name} holds {leaked}"


def test_migration_job_per_database_service(build: tuple[str, list[Doc]]) -> None:
    _, docs = build
    jobs = _of_kind(docs, "Job")
    deployments = _of_kind(docs, "Deployment")
    migrations = {_app_of(job): job for job in jobs.values()}
    assert set(migrations) == set(DATABASE_SERVICES)
    for app, job in migrations.items():
        pod = job["spec"]["template"]["spec"]
        assert pod["restartPolicy"] in ("Never", "OnFailure")
        (container,) = pod["containers"]
        assert container["command"] == [app, "migrate"]
        (app_container,) = deployments[app]["spec"]["template"]["spec"]["containers"]
        assert container["image"] == app_container["image"]
        assert container["env"] == app_container["env"], "same settings as the service"
        assert container["envFrom"] == app_container["envFrom"]
        assert job["spec"].get("backoffLimit", 6) <= 6


def test_worker_scales_on_the_operation_jobs_queue(build: tuple[str, list[Doc]]) -> None:
    _, docs = build
    worker = _of_kind(docs, "Deployment")[WORKER]
    assert "replicas" not in worker["spec"], "KEDA owns the worker's replica count"
    (scaled,) = _of_kind(docs, "ScaledObject").values()
    target = scaled["spec"]["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target["name"] == worker["metadata"]["name"]
    assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    metadata = trigger["metadata"]
    queue_url = urlsplit(metadata["queueURL"])
    assert queue_url.path.rsplit("/", 1)[-1] == topology.OPERATION_JOBS.name
    assert int(metadata["queueLength"]) >= 1
    assert int(metadata["activationQueueLength"]) >= 0
    assert metadata["awsRegion"]
    worker_env = _generated(BUILDS[build[0]], "configMapGenerator")[f"{WORKER}-env"]
    assert int(metadata["queueLength"]) == int(worker_env["WORKER_CONCURRENCY"])
    auth_name = trigger["authenticationRef"]["name"]
    assert auth_name in _of_kind(docs, "TriggerAuthentication")
    pdbs = _of_kind(docs, "PodDisruptionBudget")
    assert pdbs[WORKER]["spec"]["selector"]["matchLabels"] == {APP_LABEL: WORKER}


def test_worker_outlives_its_shutdown_grace(build: tuple[str, list[Doc]]) -> None:
    label, docs = build
    worker = _of_kind(docs, "Deployment")[WORKER]
    grace = worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    worker_env = _generated(BUILDS[label], "configMapGenerator")[f"{WORKER}-env"]
    assert grace > float(worker_env["WORKER_SHUTDOWN_GRACE_SECONDS"])


def test_dev_overlay_uses_elasticmq(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _effective(DEV)
    namespace = _kustomization(DEV)["namespace"]
    configmaps = _generated(DEV, "configMapGenerator")
    secrets = _generated(DEV, "secretGenerator")
    assert set(secrets) == {SECRET_NAME}
    assert _kustomization(DEV)["secretGenerator"][0]["options"]["disableNameSuffixHash"] is True

    elasticmq = _of_kind(docs, "Deployment")["elasticmq"]
    (container,) = elasticmq["spec"]["template"]["spec"]["containers"]
    assert container["image"].startswith("softwaremill/elasticmq-native:1.6.")
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/health"
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/opt/elasticmq.conf"]
    volumes = {v["name"]: v for v in elasticmq["spec"]["template"]["spec"]["volumes"]}
    config_map = volumes[mount["name"]]["configMap"]["name"]
    assert mount["subPath"] in configmaps[config_map]
    assert configmaps[config_map][mount["subPath"]] == (REPO_ROOT / "elasticmq.conf").read_text()
    assert elasticmq["spec"]["replicas"] == 1, "a second ElasticMQ is a second broker"

    (scaled,) = _of_kind(docs, "ScaledObject").values()
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    endpoint = urlsplit(metadata["awsEndpoint"])
    assert endpoint.hostname == f"elasticmq.{namespace}.svc.cluster.local", (
        "KEDA runs in its own namespace: use the fully qualified name"
    )
    assert endpoint.port == 9324
    assert urlsplit(metadata["queueURL"]).netloc == endpoint.netloc
    assert topology.LOCAL_ACCOUNT_ID in metadata["queueURL"]
    (auth,) = _of_kind(docs, "TriggerAuthentication").values()
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["key"] in secrets[ref["name"]]

    for doc in docs:
        if _pod_spec(doc) is None or _app_of(doc) not in SETTINGS_BY_SERVICE:
            continue
        for container in _containers(doc):
            for item in container.get("env", []):
                ref = item.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    assert ref["key"] in secrets[ref["name"]], f"dev Secret lacks {ref['key']}"
            env = _container_env(container, configmaps, secrets)
            settings = load_settings(SETTINGS_BY_SERVICE[_app_of(doc)], env, monkeypatch)
            assert settings.environment == "development"
            assert settings.host == "0.0.0.0"
            assert settings.sqs.endpoint_url == "http://elasticmq:9324"
            assert settings.sqs.create_queues is False
            assert settings.sqs.region == topology.LOCAL_REGION


def test_production_overlay_uses_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    docs = _effective(PRODUCTION)
    configmaps = _generated(PRODUCTION, "configMapGenerator")
    assert "secretGenerator" not in _kustomization(PRODUCTION), "secrets come from outside"
    assert not _of_kind(docs, "Secret")

    deployments = _of_kind(docs, "Deployment")
    assert "elasticmq" not in deployments
    for app in DEPLOYABLES:
        if app != WORKER:
            assert deployments[app]["spec"]["replicas"] >= 2, f"{app} needs redundancy"
    (scaled,) = _of_kind(docs, "ScaledObject").values()
    assert scaled["spec"]["minReplicaCount"] >= 2
    metadata = scaled["spec"]["triggers"][0]["metadata"]
    assert "awsEndpoint" not in metadata
    assert urlsplit(metadata["queueURL"]).hostname == f"sqs.{metadata['awsRegion']}.amazonaws.com"
    (auth,) = _of_kind(docs, "TriggerAuthentication").values()
    assert auth["spec"] == {"podIdentity": {"provider": "aws", "identityOwner": "workload"}}
    accounts = _of_kind(docs, "ServiceAccount")
    worker_pod = deployments[WORKER]["spec"]["template"]["spec"]
    worker_account = accounts[worker_pod["serviceAccountName"]]
    assert "eks.amazonaws.com/role-arn" in worker_account["metadata"]["annotations"]

    for doc in docs:
        if _pod_spec(doc) is None or _app_of(doc) in FRONTENDS:
            continue
        assert _app_of(doc) in SETTINGS_BY_SERVICE
        for container in _containers(doc):
            env = _container_env(container, configmaps, {})
            settings = load_settings(SETTINGS_BY_SERVICE[_app_of(doc)], env, monkeypatch)
            assert settings.environment == "production"
            assert settings.sqs.endpoint_url is None, "production talks to AWS SQS"
            assert settings.sqs.access_key_id is None, "production uses IAM roles"
            assert settings.sqs.create_queues is False


def _console_settings(
    directory: Path, secrets: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> tuple[ConsoleSettings, Doc]:
    docs = _effective(directory)
    (container,) = _containers(_of_kind(docs, "Deployment")["console"])
    configmaps = _generated(directory, "configMapGenerator")
    env = _container_env(container, configmaps, secrets)
    return load_settings(ConsoleSettings, env, monkeypatch), container


def test_the_ingress_routes_each_prefix_as_the_console_does(build: tuple[str, list[Doc]]) -> None:
    _, docs = build
    (ingress,) = _of_kind(docs, "Ingress").values()
    (rule,) = ingress["spec"]["rules"]
    routes = {p["path"]: p["backend"]["service"]["name"] for p in rule["http"]["paths"]}
    services = _of_kind(docs, "Service")
    assert set(routes.values()) <= set(services)
    assert routes.pop("/") == "console"
    # auth (whoami) and the renamed audits fall through to the console, which proxies them.
    expected = {f"/api/v1/{first}": f"{owner}-svc" for first, owner in OWNERS.items()}
    del expected["/api/v1/auth"]
    assert routes == expected
    assert "/api/v1/events" not in routes
    assert (
        ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-buffering"] == "off"
    )


def test_the_console_signs_in_with_oidc_in_production_and_alone_in_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    production, container = _console_settings(PRODUCTION, {}, monkeypatch)
    assert production.environment == "production"
    assert production.oidc_authority == "https://sso.example.com/"
    assert production.oidc_client_id == "idp-console"
    assert "env" not in container, "the production console holds no signing secret"
    for service, url in production.upstreams().items():
        app = f"{service}-svc"
        assert url == f"http://{app}:{default_port(SETTINGS_BY_SERVICE[app])}"
    secrets = _generated(DEV, "secretGenerator")
    development, _ = _console_settings(DEV, secrets, monkeypatch)
    assert development.environment == "development"
    shared = _generated(DEV, "configMapGenerator")["idp-shared-env"]
    assert development.auth.signing_secret() == secrets[SECRET_NAME]["auth-jwt-secret"]
    assert development.auth.jwt_issuer == shared["AUTH_JWT_ISSUER"]
    assert development.auth.jwt_audience == shared["AUTH_JWT_AUDIENCE"]


# ------------------------------------------------------------ references and kubectl
_HASH_SUFFIX = re.compile(r"-[a-z0-9]{10}$")


def _unhashed(name: str) -> str:
    return _HASH_SUFFIX.sub("", name)


def _assert_references_resolve(directory: Path, docs: list[Doc]) -> None:
    configmaps = set(_generated(directory, "configMapGenerator"))
    configmaps |= set(_of_kind(docs, "ConfigMap"))
    accounts = set(_of_kind(docs, "ServiceAccount"))
    for doc in docs:
        pod = _pod_spec(doc)
        if pod is None:
            continue
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        assert pod.get("serviceAccountName", "default") in accounts | {"default"}, name
        for volume in pod.get("volumes", []):
            if "configMap" in volume:
                assert volume["configMap"]["name"] in configmaps, name
        for container in _containers(doc):
            for source in container.get("envFrom", []):
                assert source["configMapRef"]["name"] in configmaps, name
            for item in container.get("env", []):
                secret_ref = item.get("valueFrom", {}).get("secretKeyRef")
                if secret_ref:
                    assert secret_ref["name"] == SECRET_NAME, name
    triggers = _of_kind(docs, "TriggerAuthentication")
    for scaled in _of_kind(docs, "ScaledObject").values():
        for trigger in scaled["spec"]["triggers"]:
            assert trigger["authenticationRef"]["name"] in triggers
        assert scaled["spec"]["scaleTargetRef"]["name"] in _of_kind(docs, "Deployment")


def _rendered(kubectl: str, directory: Path) -> list[Doc]:
    result = subprocess.run(
        [kubectl, "kustomize", str(directory)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if isinstance(doc, dict)]


@pytest.mark.parametrize("label", list(BUILDS))
def test_references_resolve_and_match_kubectl(label: str) -> None:
    """Every reference resolves inside the build. Where kubectl happens to be installed
    (it is not required), its rendering must also agree with the static view the other
    tests read."""
    directory = BUILDS[label]
    static = _effective(directory)
    _assert_references_resolve(directory, static)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return
    rendered = {
        (d["kind"], _unhashed(d["metadata"]["name"])): d for d in _rendered(kubectl, directory)
    }
    static_by_key = {(d["kind"], d["metadata"]["name"]): d for d in static}
    configmaps = _generated(directory, "configMapGenerator")
    secrets = _generated(directory, "secretGenerator")
    generated = {("ConfigMap", n) for n in configmaps} | {("Secret", n) for n in secrets}
    assert set(rendered) == set(static_by_key) | generated
    for name, data in configmaps.items():
        assert rendered[("ConfigMap", name)].get("data", {}) == data, name
    for doc_key, doc in static_by_key.items():
        other = rendered[doc_key]
        if doc["kind"] in ("ScaledObject", "TriggerAuthentication"):
            assert other["spec"] == doc["spec"], doc_key
        if doc["kind"] == "ServiceAccount":
            assert other["metadata"].get("annotations") == doc["metadata"].get("annotations")
        if doc["kind"] == "Deployment":
            assert other["spec"].get("replicas") == doc["spec"].get("replicas"), doc_key
        for mine, theirs in zip(_containers(doc), _containers(other), strict=True):
            assert theirs["image"] == mine["image"], doc_key
            assert theirs.get("env") == mine.get("env"), doc_key
            theirs_from = [_unhashed(s["configMapRef"]["name"]) for s in theirs.get("envFrom", [])]
            assert theirs_from == [s["configMapRef"]["name"] for s in mine.get("envFrom", [])]
