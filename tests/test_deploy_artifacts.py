"""Offline checks of the deployment artifacts: docker-compose.yml, docker/Dockerfile and k8s/.

No Docker engine and no cluster: the compose file is validated against the Compose
Specification's JSON schema, the Kubernetes manifests with kubernetes-validate (the API's
OpenAPI schemas, strict), the KEDA ScaledObject against KEDA's CRD schema (both schemas
vendored in tests/schemas, see its README); then the rules of our own: non-root, read-only
root filesystems, builds from the repository root, settings names that exist.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from pydantic import BaseModel

from darkroom_catalog.settings import CatalogSettings
from darkroom_common.settings import DarkroomSettings, load_settings
from darkroom_ingest.settings import IngestSettings
from darkroom_raw_provider.settings import RawProviderSettings
from darkroom_variants.settings import VariantsSettings

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = Path(__file__).resolve().parent / "schemas"
K8S = ROOT / "k8s"
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "docker" / "Dockerfile"

SETTINGS_CLASSES: tuple[type[DarkroomSettings], ...] = (
    IngestSettings,
    RawProviderSettings,
    VariantsSettings,
    CatalogSettings,
)
UNPREFIXED_SETTINGS = {"KAFKA_BOOTSTRAP_SERVERS", "DARKROOM_SECRETS_DIR"}
"""Variables read as-is (settings.py), outside the pydantic field names."""

BUILT_SERVICES = {"topics", "ingest", "upload-api", "raw-provider", "variants", "catalog"}
"""Compose services built from this repository."""


def load_yaml_docs(path: Path) -> list[dict[str, Any]]:
    """Return the non-empty YAML documents of ``path``."""
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def compose() -> dict[str, Any]:
    """Return docker-compose.yml, parsed (anchors and ``<<`` merges resolved)."""
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def k8s_docs() -> list[tuple[Path, dict[str, Any]]]:
    """Return every manifest of k8s/ (the kustomization excluded) with its file."""
    return [
        (p, d)
        for p in sorted(K8S.glob("*.yaml"))
        if p.name != "kustomization.yaml"
        for d in load_yaml_docs(p)
    ]


# --- settings names -------------------------------------------------------------------


def _model_has(model: type[BaseModel], parts: list[str]) -> bool:
    field = model.model_fields.get(parts[0])
    if field is None:
        return False
    if len(parts) == 1:
        return True
    sub = field.annotation
    return isinstance(sub, type) and issubclass(sub, BaseModel) and _model_has(sub, parts[1:])


def is_setting(name: str) -> bool:
    """Whether environment variable ``name`` sets a field of some service's settings.

    ``DARKROOM_<FIELD>[__<SUB>…]`` (shared) or ``DARKROOM_<SERVICE>_<FIELD>…``, matched
    against the pydantic fields of the four services' settings classes.
    """
    if name in UNPREFIXED_SETTINGS:
        return True
    for cls in SETTINGS_CLASSES:
        for prefix in (str(cls.model_config.get("env_prefix", "")), "DARKROOM_"):
            if name.startswith(prefix) and _model_has(cls, name[len(prefix) :].lower().split("__")):
                return True
    return False


def test_is_setting_accepts_real_names_and_rejects_typos():
    assert is_setting("DARKROOM_STORAGE__BUCKET")
    assert is_setting("DARKROOM_INGEST_API_PORT")
    assert is_setting("DARKROOM_RAW_PROVIDER_IMAGEN__BASE_URL")
    assert is_setting("KAFKA_BOOTSTRAP_SERVERS")
    assert not is_setting("DARKROOM_STORAGE__BUCKETT")
    assert not is_setting("DARKROOM_WEBPORT")
    assert not is_setting("DARKROOM_VARIANTS_API_PORT")
    assert not is_setting("BROKER_URL")


# --- docker-compose.yml ---------------------------------------------------------------


def _strict_draft7(schema: dict[str, Any]) -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(schema)


def test_compose_matches_the_compose_spec_schema():
    schema = json.loads((SCHEMAS / "compose-spec.schema.json").read_text())
    errors = sorted(_strict_draft7(schema).iter_errors(compose()), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def test_compose_schema_check_rejects_a_bad_file():
    schema = json.loads((SCHEMAS / "compose-spec.schema.json").read_text())
    bad = copy.deepcopy(compose())
    bad["services"]["variants"]["imagee"] = "typo"
    bad["services"]["ingest"]["volumes"] = "ingest-data:/data"
    messages = [e.message for e in _strict_draft7(schema).iter_errors(bad)]
    assert any("imagee" in m for m in messages)
    assert any("'ingest-data:/data' is not of type 'array'" in m for m in messages)


def test_compose_builds_every_darkroom_service_from_the_repo_root_as_non_root():
    services = compose()["services"]
    members = {
        tomllib.loads(p.read_text())["project"]["name"] for p in ROOT.glob("*/**/pyproject.toml")
    }
    assert {n for n, s in services.items() if "build" in s} == BUILT_SERVICES
    for name in BUILT_SERVICES:
        svc = services[name]
        build = svc["build"]
        assert (COMPOSE.parent / build["context"]).resolve() == ROOT, name
        assert (ROOT / build["dockerfile"]).resolve() == DOCKERFILE, name
        assert build["args"]["PACKAGE"] in members, name
        uid = str(svc["user"]).split(":")[0]
        assert uid.isdigit(), f"{name} runs as {svc['user']!r}: use a numeric uid"
        assert int(uid) >= 1000, f"{name} runs as {svc['user']!r}"
        assert svc["read_only"] is True, name
        assert any(str(t).startswith("/tmp") for t in svc["tmpfs"]), name
        assert svc["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in svc["security_opt"], name
        if name != "topics":
            assert any(str(v).split(":")[-1] == "/data" for v in svc["volumes"]), name


def test_compose_commands_are_modules_that_exist():
    services = compose()["services"]
    modules = {services[n]["command"][0] for n in BUILT_SERVICES}
    assert "darkroom_ingest.api" in modules
    missing = sorted(m for m in modules if importlib.util.find_spec(m) is None)
    assert not missing, f"compose runs modules that do not exist: {missing}"


def _resolve_interpolation(value: str) -> str:
    return re.sub(r"\$\{[A-Z0-9_]+:-([^}]*)\}", r"\1", value)


def test_compose_environment_names_are_settings_and_load(monkeypatch):
    services = compose()["services"]
    for name in BUILT_SERVICES:
        env = {k: _resolve_interpolation(str(v)) for k, v in services[name]["environment"].items()}
        unknown = sorted(k for k in env if not is_setting(k))
        assert not unknown, f"{name}: {unknown} are not settings"
    env = {
        k: _resolve_interpolation(str(v)) for k, v in services["variants"]["environment"].items()
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    for cls in SETTINGS_CLASSES:
        settings = load_settings(cls)
        assert settings.storage.backend == "s3"
        assert settings.kafka_bootstrap_servers == "kafka:9092"
        assert settings.web_host == "0.0.0.0"


def test_compose_kafka_is_apache_kraft_and_the_topics_job_gates_the_services():
    services = compose()["services"]
    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    for name in BUILT_SERVICES - {"topics"}:
        deps = services[name]["depends_on"]
        assert deps["topics"]["condition"] == "service_completed_successfully", name
    assert services["topics"]["command"] == ["darkroom_cli", "topics", "create"]


def test_dockerfile_uses_uv_locked_per_package_and_a_non_root_user():
    text = DOCKERFILE.read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)
    final = stages[-1]
    assert re.search(r"uv sync --locked[^\n]*--package \"\$\{PACKAGE\}\"", text)
    users = re.findall(r"^USER (\S+)", final, flags=re.M)
    assert users, "the runtime stage sets no USER"
    assert users[-1].split(":")[0] not in {"0", "root"}
    assert 'VOLUME ["/data", "/tmp"]' in final
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    assert ".venv" in ignore
    assert ".git" in ignore


def test_dockerfile_copies_every_workspace_members_pyproject_before_the_locked_sync():
    """Without one, ``uv sync --locked`` sees another workspace than uv.lock and stops."""
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    members = {
        str(p.relative_to(ROOT))
        for pattern in globs["members"]
        for p in ROOT.glob(pattern)
        if (p / "pyproject.toml").is_file()
    }
    copied = set(
        re.findall(r"^COPY (\S+)/pyproject\.toml \1/pyproject\.toml$", DOCKERFILE.read_text(), re.M)
    )
    assert sorted(members - copied) == []


# --- Kubernetes -----------------------------------------------------------------------

CORE_SKIP = {"ScaledObject"}
K8S_VERSION = kubernetes_validate.utils.latest_version()


def test_k8s_core_manifests_validate_strictly():
    docs = [(p, d) for p, d in k8s_docs() if d["kind"] not in CORE_SKIP]
    kinds = {d["kind"] for _, d in docs}
    assert {"Deployment", "StatefulSet", "Service", "PodDisruptionBudget", "ConfigMap"} <= kinds
    for path, doc in docs:
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{path.name} {doc['kind']}/{doc['metadata']['name']}: {exc.message}")


def test_k8s_validation_rejects_a_bad_deployment():
    deployment = next(d for _, d in k8s_docs() if d["kind"] == "Deployment")
    bad = copy.deepcopy(deployment)
    bad["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)
    bad = copy.deepcopy(deployment)
    bad["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def _workloads() -> list[dict[str, Any]]:
    return [d for _, d in k8s_docs() if d["kind"] in {"Deployment", "StatefulSet"}]


def test_k8s_every_service_has_a_hardened_probed_bounded_workload():
    workloads = {d["metadata"]["name"]: d for d in _workloads()}
    assert set(workloads) == {"ingest", "upload-api", "raw-provider", "variants", "catalog"}
    assert workloads["catalog"]["kind"] == "StatefulSet"
    for name, w in workloads.items():
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            assert c["readinessProbe"]["httpGet"]["path"], name
            assert c["livenessProbe"]["httpGet"]["path"], name
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c["resources"][kind]), name
            refs = {next(iter(r)): next(iter(r.values()))["name"] for r in c["envFrom"]}
            assert refs == {"configMapRef": "darkroom-config", "secretRef": "darkroom-secrets"}
            mounts = {m["mountPath"] for m in c["volumeMounts"]}
            assert {"/data", "/tmp"} <= mounts, name


def test_k8s_every_workload_has_a_pdb_and_a_service():
    docs = [d for _, d in k8s_docs()]
    for w in _workloads():
        labels = w["spec"]["template"]["metadata"]["labels"]
        selects = [
            d
            for d in docs
            if d["kind"] == "PodDisruptionBudget"
            and d["spec"]["selector"]["matchLabels"].items() <= labels.items()
        ]
        assert len(selects) == 1, w["metadata"]["name"]
        services = [
            d
            for d in docs
            if d["kind"] == "Service" and d["spec"]["selector"].items() <= labels.items()
        ]
        assert services, w["metadata"]["name"]


def test_k8s_configmap_and_secret_names_are_settings():
    for _, d in k8s_docs():
        if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "darkroom-config":
            names = list(d["data"])
        elif d["kind"] == "Secret" and d["metadata"]["name"] == "darkroom-secrets":
            names = list(d["stringData"])
        elif d["kind"] in {"Deployment", "StatefulSet"}:
            names = [
                e["name"]
                for c in d["spec"]["template"]["spec"]["containers"]
                for e in c.get("env", [])
            ]
        else:
            continue
        unknown = [n for n in names if not is_setting(n)]
        assert not unknown, f"{d['kind']}/{d['metadata']['name']}: {unknown} are not settings"


def test_kustomization_lists_every_manifest():
    listed = yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"]
    assert sorted(listed) == sorted(
        p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml"
    )


def _closed(schema: Any) -> Any:
    """Copy ``schema`` with ``additionalProperties: false`` wherever properties are listed.

    The API server prunes unknown fields of a structural CRD schema silently; here they fail,
    so a misspelt field (``maxReplicas``) is caught.
    """
    if isinstance(schema, dict):
        out = {k: _closed(v) for k, v in schema.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(schema, list):
        return [_closed(v) for v in schema]
    return schema


def _keda_validator() -> jsonschema.Draft7Validator:
    schema = yaml.safe_load((SCHEMAS / "keda-scaledobject.schema.yaml").read_text())
    return jsonschema.Draft7Validator(_closed(schema))


def _scaled_object() -> dict[str, Any]:
    (doc,) = [d for _, d in k8s_docs() if d["kind"] == "ScaledObject"]
    return doc


def _config() -> dict[str, str]:
    (cm,) = [d for _, d in k8s_docs() if d["kind"] == "ConfigMap"]
    return dict(cm["data"])


def test_keda_scaled_object_matches_the_crd_and_the_deployment():
    so = _scaled_object()
    errors = list(_keda_validator().iter_errors(so))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    spec = so["spec"]
    target = spec["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "variants")
    assert any(
        w["kind"] == "Deployment" and w["metadata"]["name"] == "variants" for w in _workloads()
    )
    cfg = _config()
    partitions = int(cfg["DARKROOM_TOPIC_PARTITIONS"])
    assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions
    (trigger,) = spec["triggers"]
    meta = trigger["metadata"]
    assert trigger["type"] == "kafka"
    assert all(isinstance(v, str) for v in meta.values())
    prefix = cfg["DARKROOM_TOPIC_PREFIX"]
    assert meta["consumerGroup"] == f"{prefix}variants"
    assert meta["topic"] == f"{prefix}variant-requested"
    assert meta["bootstrapServers"] == cfg["KAFKA_BOOTSTRAP_SERVERS"]
    assert int(meta["lagThreshold"]) > 0
    broker_version = compose()["services"]["kafka"]["image"].split(":")[1]
    assert meta["version"] == broker_version == "4.0.0"


def test_keda_schema_rejects_unquoted_metadata_and_unknown_fields():
    so = copy.deepcopy(_scaled_object())
    so["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 50
    so["spec"]["maxReplicas"] = 8
    messages = [e.message for e in _keda_validator().iter_errors(so)]
    assert any("50 is not of type 'string'" in m for m in messages)
    assert any("maxReplicas" in m for m in messages)
