"""deploy/k8s: every manifest is valid Kubernetes (offline schemas), and what it runs is a valid
``hpo`` command line for the shipped studies."""

from __future__ import annotations

import copy
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml

import hpo
from hpo.cli import cli

kubernetes_validate = pytest.importorskip(
    "kubernetes_validate", reason="the test extra's kubernetes-validate is not installed"
)

REPO = Path(hpo.__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
STUDIES = sorted(p.stem for p in (REPO / "studies").glob("*.yaml"))
# podFailurePolicy is GA from 1.31; the newest schemas the package ships too.
VERSIONS = ["1.31.0", kubernetes_validate.latest_version()]

Resource = dict[str, Any]


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def resources() -> list[Resource]:
    docs = []
    for name in kustomization()["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]
    return docs


def one(kind: str, name: str) -> Resource:
    [found] = [r for r in resources() if r["kind"] == kind and r["metadata"]["name"] == name]
    return found


def pod_specs() -> Iterator[tuple[Resource, dict[str, Any]]]:
    for resource in resources():
        template = resource.get("spec", {}).get("template")
        if template is not None:
            yield resource, template["spec"]


def hpo_containers() -> list[tuple[Resource, dict[str, Any]]]:
    """Containers running the hpo image (entrypoint ``hpo``), with their workload."""
    found = []
    for resource, spec in pod_specs():
        for container in spec["containers"]:
            if container["image"].split(":")[0] == "hpo":
                found.append((resource, container))
    return found


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# -- schemas -----------------------------------------------------------------------------------


def test_the_kustomization_lists_every_manifest() -> None:
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization()["resources"]) == sorted(files)


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates_against_the_kubernetes_schemas(
    version: str, no_network: None
) -> None:
    kinds = set()
    for resource in resources():
        # strict: unknown fields (a misspelt key) are errors too.
        kubernetes_validate.validate(resource, version, strict=True)
        kinds.add(resource["kind"])
    assert {
        "StatefulSet",
        "Service",
        "Deployment",
        "Job",
        "PersistentVolumeClaim",
    } <= kinds


def test_the_validation_catches_a_misspelt_field(no_network: None) -> None:
    job = copy.deepcopy(one("Job", "hpo-workers"))
    job["spec"]["completionsMode"] = job["spec"].pop("completionMode")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(job, VERSIONS[-1], strict=True)


# -- how the pieces fit ------------------------------------------------------------------------


def test_services_select_a_workload_and_name_its_ports() -> None:
    workloads = [(r, s) for r, s in pod_specs()]
    for service in (r for r in resources() if r["kind"] == "Service"):
        selector = service["spec"]["selector"]
        matching = [
            (r, s)
            for r, s in workloads
            if selector.items() <= r["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(matching) == 1, service["metadata"]["name"]
        ports = {p["name"] for c in matching[0][1]["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports


def test_nothing_is_exposed_outside_the_cluster() -> None:
    # The dashboard has no login and PostgreSQL's port is only for the workers.
    for resource in resources():
        assert resource["kind"] != "Ingress"
        if resource["kind"] == "Service":
            assert resource["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert one("Service", "hpo-dashboard")["spec"]["type"] == "ClusterIP"


def test_the_password_comes_from_the_secret_everywhere() -> None:
    postgres = one("StatefulSet", "hpo-postgres")["spec"]["template"]["spec"]["containers"][0]
    containers = [postgres] + [c for _, c in hpo_containers()]
    for container in containers:
        env = {e["name"]: e for e in container["env"]}
        key = "POSTGRES_PASSWORD"
        assert env[key]["valueFrom"]["secretKeyRef"] == {"name": "hpo-postgres", "key": "password"}
    for _, container in hpo_containers():
        env = [e["name"] for e in container["env"]]
        # Kubernetes expands $(POSTGRES_PASSWORD) only from a variable defined before it.
        assert env.index("POSTGRES_PASSWORD") < env.index("HPO_STORAGE")
        [storage] = [e["value"] for e in container["env"] if e["name"] == "HPO_STORAGE"]
        assert storage == "postgresql://hpo:$(POSTGRES_PASSWORD)@hpo-postgres:5432/hpo"
        assert "password" not in " ".join(container["args"]).lower()


def test_workers_are_an_indexed_job_on_gpus_that_survives_evictions() -> None:
    job = one("Job", "hpo-workers")
    spec = job["spec"]
    pod = spec["template"]["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["parallelism"] == spec["completions"]
    # An evicted or preempted pod is replaced without counting as a failure.
    assert {
        "action": "Ignore",
        "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}],
    } in spec["podFailurePolicy"]["rules"]
    assert pod["restartPolicy"] == "Never"  # what podFailurePolicy requires
    # hpo fails and re-queues its trial within seconds of SIGTERM; the grace period leaves
    # room for a short database outage on top.
    assert pod["terminationGracePeriodSeconds"] >= 60
    [worker] = pod["containers"]
    assert int(worker["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    mounts = {m["name"]: m for m in worker["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    data = volumes[mounts["data"]["name"]]["persistentVolumeClaim"]["claimName"]
    one("PersistentVolumeClaim", data)
    assert mounts["data"]["mountPath"] == "/work/data" and mounts["data"]["readOnly"]


# -- the command lines -------------------------------------------------------------------------


def parse(args: list[str]) -> tuple[str, dict[str, Any]]:
    """``hpo ARGS`` parsed by the real click command: (subcommand, value by option flag).

    Raises:
        click.UsageError: an unknown option, a bad value, a missing required option.
    """
    group = click.Context(cli, info_name="hpo")
    name, command, rest = cli.resolve_command(group, list(args))
    assert name is not None and command is not None
    params = command.make_context(name, rest, parent=group).params
    return name, {
        flag: params[p.name]
        for p in command.params
        for flag in p.opts
        if p.name is not None and flag.startswith("--")
    }


def test_parse_refuses_a_bad_command_line() -> None:
    with pytest.raises(click.UsageError):
        parse(["run", "--study", "x", "--n-trials", "many"])
    with pytest.raises(click.UsageError):
        parse(["run", "--study", "x", "--gpus", "all"])


@pytest.mark.parametrize(
    ("kind", "name"), [("Job", "hpo-workers"), ("Deployment", "hpo-dashboard")]
)
def test_each_container_runs_a_valid_command_for_a_shipped_study(kind: str, name: str) -> None:
    resource = one(kind, name)
    [container] = resource["spec"]["template"]["spec"]["containers"]
    command, params = parse(container["args"])
    assert params["--study"] in STUDIES
    if command == "run":
        assert params["--devices"] == "all" and params["--n-trials"] >= 1
    else:
        assert command == "dashboard"
        # Listening on the pod's address, on the port the Service targets.
        assert params["--host"] == "0.0.0.0"
        [port] = container["ports"]
        assert params["--port"] == port["containerPort"]


def test_the_workers_command_dry_runs_on_the_study_and_data_layout_of_the_image(
    run_cli: Any, demo_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The image's working directory is /work: studies/ baked in, the data volume at data/.
    [container] = one("Job", "hpo-workers")["spec"]["template"]["spec"]["containers"]
    (tmp_path / "data").mkdir()
    os.symlink(demo_data, tmp_path / "data" / "mask")
    os.symlink(REPO / "studies", tmp_path / "studies")
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(*container["args"], "--dry-run")
    assert code == 0, err
    assert "is valid" in out and "nothing trained, nothing written" in out
