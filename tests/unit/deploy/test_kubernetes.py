"""Kubernetes manifests, validated offline: every kustomization renders (kustomize, or
`kubectl kustomize`), every built-in resource validates against the Kubernetes schema
(kubernetes-validate, bundled schemas), and the properties the deployment relies on hold
(worker StatefulSet with its RocksDB volume, probes, PDBs and HPAs that point at real
workloads, default-deny network policy, Strimzi topics equal to meterwatch's own specs)."""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from meterwatch.settings import Settings
from meterwatch.topics import topic_specs
from stream.app import internal_topic_specs

ROOT = Path(__file__).resolve().parents[3]
K8S = ROOT / "deploy" / "k8s"
K8S_VERSION = "1.33.0"  # the oldest Kubernetes the manifests must run on (HPA v2, PDB v1)
OVERLAYS = ["overlays/pilot", "overlays/production"]


def _kustomize_cmd() -> list[str]:
    if shutil.which("kustomize"):
        return ["kustomize", "build"]
    if shutil.which("kubectl"):
        return ["kubectl", "kustomize"]
    pytest.fail(
        "neither kustomize nor kubectl is installed: "
        "GOBIN=/usr/local/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.5.0",
        pytrace=False,
    )


def render(path: str) -> list[dict[str, Any]]:
    """The rendered documents of one kustomization (a fresh copy: tests may change it)."""
    return copy.deepcopy(_render(path))


@functools.cache
def _render(path: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [*_kustomize_cmd(), str(K8S / path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


@pytest.mark.parametrize("path", ["base", "strimzi", *OVERLAYS])
def test_renders_and_validates_against_the_schemas(path: str) -> None:
    docs = render(path)
    assert docs
    custom = []
    for doc in docs:
        if doc["apiVersion"].startswith("kafka.strimzi.io/"):
            custom.append(doc)  # the operator's CRDs are not bundled: checked below
            continue
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(
                f"{doc['kind']}/{doc['metadata']['name']} in {path}: {exc.message} at {list(exc.path)}"
            )
    assert (path == "strimzi") == bool(custom)


def test_a_broken_manifest_is_rejected() -> None:
    sts = by_kind(render("overlays/pilot"), "StatefulSet")["meterwatch-worker"]
    sts["spec"]["replicas"] = "three"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, K8S_VERSION, strict=True)
    sts["spec"]["replicas"] = 1
    sts["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(sts, K8S_VERSION, strict=True)


@pytest.mark.parametrize("path", OVERLAYS)
def test_workloads_are_what_the_deployment_guide_says(path: str) -> None:
    docs = render(path)
    sts = by_kind(docs, "StatefulSet")
    deps = by_kind(docs, "Deployment")
    assert sorted(sts) == ["meterwatch-worker"] and sorted(deps) == ["meterwatch-api", "meterwatch-notifier"]
    worker = sts["meterwatch-worker"]["spec"]
    (claim,) = worker["volumeClaimTemplates"]
    (container,) = worker["template"]["spec"]["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts[claim["metadata"]["name"]] == "/var/lib/meterwatch"  # MW_DATA_DIR: the RocksDB tables
    instance = next(e for e in container["env"] if e["name"] == "WORKER_INSTANCE")
    assert instance["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    for name, spec in [("meterwatch-worker", worker), *((n, d["spec"]) for n, d in deps.items())]:
        pod = spec["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True, name
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"], name
            assert "livenessProbe" in c and ("readinessProbe" in c or name == "meterwatch-worker"), name
            assert "memory" in c["resources"]["limits"], name
    for name, dep in deps.items():
        (c,) = dep["spec"]["template"]["spec"]["containers"]
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz", name


@pytest.mark.parametrize("path", OVERLAYS)
def test_pdbs_hpas_and_references_point_at_real_objects(path: str) -> None:
    docs = render(path)
    workloads = {**by_kind(docs, "StatefulSet"), **by_kind(docs, "Deployment")}
    for name, pdb in by_kind(docs, "PodDisruptionBudget").items():
        sel = pdb["spec"]["selector"]["matchLabels"]
        assert any(
            sel.items() <= w["spec"]["template"]["metadata"]["labels"].items() for w in workloads.values()
        ), name
    for name, hpa in by_kind(docs, "HorizontalPodAutoscaler").items():
        ref = hpa["spec"]["scaleTargetRef"]
        assert ref["name"] in workloads and workloads[ref["name"]]["kind"] == ref["kind"], name
    # the worker never scales beyond the partitions it could get
    cms = by_kind(docs, "ConfigMap")
    (config,) = cms.values()
    partitions = int(config["data"]["MW_READINGS_PARTITIONS"])
    assert by_kind(docs, "HorizontalPodAutoscaler")["meterwatch-worker"]["spec"]["maxReplicas"] <= partitions
    secrets = by_kind(docs, "Secret")
    for w in workloads.values():
        for c in w["spec"]["template"]["spec"]["containers"]:
            refs = {r.get("configMapRef", r.get("secretRef"))["name"] for r in c["envFrom"]}
            assert config["metadata"]["name"] in refs
            # production: the Secret comes from the utility's vault, never from the repository
            assert (set(secrets) <= refs) and (bool(secrets) == (path == "overlays/pilot"))


def test_network_policy_denies_by_default() -> None:
    docs = render("overlays/production")
    pols = by_kind(docs, "NetworkPolicy")
    deny = pols["meterwatch-default-deny"]["spec"]
    assert deny["policyTypes"] == ["Ingress", "Egress"] and "ingress" not in deny and "egress" not in deny
    # HTTPS out only from the notifier (SMS gateway, push webhook)
    https = [
        n
        for n, p in pols.items()
        if any(
            port.get("port") == 443 for rule in p["spec"].get("egress", []) for port in rule.get("ports", [])
        )
    ]
    assert https == ["meterwatch-notifier-egress"]
    assert pols["meterwatch-notifier-egress"]["spec"]["podSelector"]["matchLabels"] == {
        "app.kubernetes.io/name": "meterwatch-notifier"
    }


def test_strimzi_topics_match_meterwatch_topic_specs() -> None:
    docs = render("strimzi")
    topics = {d["spec"]["topicName"]: d["spec"] for d in docs if d["kind"] == "KafkaTopic"}
    settings = Settings(readings_partitions=12, customers_partitions=12, alerts_partitions=12)
    specs = {s.name: s for s in topic_specs(settings) + internal_topic_specs(settings)}
    assert sorted(topics) == sorted(specs)
    for name, spec in specs.items():
        got = topics[name]
        assert got["partitions"] == spec.partitions and got["replicas"] == 3, name
        assert got["config"] == {**spec.configs, "min.insync.replicas": "2"}, name
    (kafka,) = [d for d in docs if d["kind"] == "Kafka"]
    assert kafka["spec"]["kafka"]["config"]["min.insync.replicas"] == 2
    (pool,) = [d for d in docs if d["kind"] == "KafkaNodePool"]
    assert pool["spec"]["replicas"] == 3
