"""The real compose stack for the tests: a Docker engine started here, images built from a local
Debian base and a local wheelhouse (no registry is reachable), and a host-network variant of
docker-compose.yml run with Debian's docker-compose.

Network rule: every container uses the host's network and talks over 127.0.0.1 only; the
engine runs without a bridge (--bridge=none), and image builds run with --network none.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
APP = "digit-pair-search-test:latest"
POSTGRES = "digit-pair-search-test-postgres:latest"
MIRROR = "http://deb.debian.org/debian"
SEARCH_SERVICES = ("init", "worker", "dashboard")
ENGINE_LOG = Path("/tmp/digit-pair-search-dockerd.log")


class Unavailable(Exception):
    """No engine can run here (a tool is missing, or the privileges are); the reason is given."""


def sh(*args: str, timeout: float = 900, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kwargs)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:4])} ... exited {r.returncode}: {r.stderr[-2000:]}")
    return r


class Engine:
    """The Docker engine: one already running, or dockerd started (and later stopped) here."""

    def __init__(self) -> None:
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def answers() -> bool:
        return subprocess.run(["docker", "info"], capture_output=True, check=False).returncode == 0

    def start(self) -> None:
        for tool in ("docker", "dockerd", "docker-compose", "debootstrap"):
            if shutil.which(tool) is None:
                raise Unavailable(f"{tool} is not installed (apt-get install docker.io "
                                  "docker-compose debootstrap; .ci/run does)")  # fmt: skip
        if os.geteuid() != 0:
            raise Unavailable("the Docker engine and debootstrap need root")
        if self.answers():
            return
        with open(ENGINE_LOG, "wb") as log:
            self.proc = subprocess.Popen(
                ["dockerd", "--bridge=none", "--iptables=false", "--ip-masq=false"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        deadline = time.time() + 60
        while not self.answers():
            if self.proc.poll() is not None or time.time() > deadline:
                tail = ENGINE_LOG.read_text(errors="replace").strip().splitlines()[-3:]
                self.stop()
                raise Unavailable(f"dockerd did not start: {' | '.join(tail)}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


def image_exists(name: str) -> bool:
    r = subprocess.run(["docker", "image", "inspect", name], capture_output=True, check=False)
    return r.returncode == 0


def requirements() -> list[str]:
    """What the project image installs: the pinned CPU torch, the project's dependencies, and
    what pip needs to build the project itself."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return ["torch==2.13.0", *project["dependencies"], "setuptools>=68", "wheel"]


# Debian + Python venv + PostgreSQL + wheels; tagged by the requirements, so that a base kept by
# the engine from before a dependency changed is not used for the new ones.
BASE = (
    "digit-pair-search-test-base:bookworm-"
    + hashlib.sha256("\n".join(requirements()).encode()).hexdigest()[:12]
)


def build_base(work: Path) -> None:
    """Debian bookworm (debootstrap, from Debian's mirror on the host) with a Python venv on
    PATH, PostgreSQL 15, and a wheelhouse of every package the project image installs, made
    on the host by pip from its own package sources; imported as one local image."""
    root = work / "rootfs"
    sh("debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
       "bookworm", str(root), MIRROR)  # fmt: skip
    (root / "usr/sbin/policy-rc.d").write_text("#!/bin/sh\nexit 101\n")  # no service starts
    (root / "usr/sbin/policy-rc.d").chmod(0o755)
    shutil.copy("/etc/resolv.conf", root / "etc/resolv.conf")
    sh("chroot", str(root), "/bin/sh", "-c",
       "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
       "--no-install-recommends postgresql-15 >/dev/null && apt-get clean "
       "&& rm -rf /var/lib/apt/lists/* /var/lib/postgresql/15 /etc/postgresql/15 "
       "&& python3 -m venv /opt/venv")  # fmt: skip
    sh(sys.executable, "-m", "pip", "download", "-q", "-d", str(root / "wheels"), *requirements())
    path = "/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    sh("sh", "-c", f"tar -C {root} -c . | docker import --change 'ENV PATH={path}' - {BASE}")
    shutil.rmtree(root)


def docker_build(tag: str, context: Path, *args: str) -> float:
    """`docker build` on the local base with no network at all; returns the seconds it took."""
    start = time.time()
    sh("docker", "build", "--network", "none", "-t", tag, "--build-arg", f"BASE_IMAGE={BASE}",
       *args, str(context))  # fmt: skip
    return time.time() - start


def build_images(work: Path) -> dict[str, float]:
    """The base once (kept by the engine between runs), then the project image from the real
    Dockerfile and the PostgreSQL image; returns the seconds each step took."""
    took = {}
    start = time.time()
    if not image_exists(BASE):
        try:
            build_base(work)
        except RuntimeError as e:  # Debian's mirror out of reach: the machine, not the project
            raise Unavailable(f"cannot build the Debian base image: {e}") from None
        took["base"] = time.time() - start
    wheels = ("--build-arg", "PIP_NO_INDEX=1", "--build-arg", "PIP_FIND_LINKS=/wheels")
    took["project"] = docker_build(APP, ROOT, *wheels)
    took["postgres"] = docker_build(POSTGRES, HERE, "-f", str(HERE / "postgres.Dockerfile"))
    return took


class Preparation:
    """The engine started and the images built in a background thread from the moment the
    tests are collected: the base image is mostly network and dpkg time, so it overlaps the
    other tests, which run first (tests/compose/conftest.py)."""

    def __init__(self) -> None:
        self.engine = Engine()
        self.took: dict[str, float] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.run, name="compose-images", daemon=True)

    def run(self) -> None:
        work = Path(tempfile.mkdtemp(prefix="digit-pair-search-compose-"))
        try:
            self.engine.start()
            self.took = build_images(work)
        except BaseException as e:  # handed to the tests by ready()
            self.error = e
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def ready(self) -> dict[str, float]:
        """Waits for the builds; the seconds each took, or the reason they could not run
        (Unavailable: the tests skip) or failed."""
        self.thread.join()
        if self.error is not None:
            raise self.error
        return self.took

    def close(self) -> None:
        if self.thread.ident is not None:
            self.thread.join()
        self.engine.stop()


def host_network_variant(pg_port: int, dashboard_port: int) -> dict[str, Any]:
    """docker-compose.yml's services, commands, health checks, volumes and depends_on, with
    host networking (so no `ports`), the local images, PostgreSQL on `pg_port` (the host's own
    server holds 5432) and the dashboard on 127.0.0.1:`dashboard_port`."""
    spec = copy.deepcopy(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))
    spec = {key: value for key, value in spec.items() if not key.startswith("x-")}
    for name, service in spec["services"].items():
        service["network_mode"] = "host"
        service.pop("ports", None)
        service.pop("build", None)
        service["image"] = APP if name in SEARCH_SERVICES else POSTGRES
    postgres = spec["services"]["postgres"]
    postgres["environment"]["PGPORT"] = str(pg_port)  # the server's port and pg_isready's
    dashboard = spec["services"]["dashboard"]
    command = dashboard["command"]
    command[command.index("--host") + 1] = "127.0.0.1"
    command[command.index("--port") + 1] = str(dashboard_port)
    return spec


class Stack:
    """One compose project of the host-network variant."""

    def __init__(self, work: Path, project: str, pg_port: int, dashboard_port: int) -> None:
        self.project, self.pg_port, self.dashboard_port = project, pg_port, dashboard_port
        self.file = work / "docker-compose.host.yml"
        self.file.write_text(yaml.safe_dump(host_network_variant(pg_port, dashboard_port)))
        self.url = f"postgresql+psycopg://optuna:optuna@127.0.0.1:{pg_port}/optuna"

    def compose(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        environment = {**os.environ, "STORAGE_URL": self.url, **(env or {})}
        return sh("docker-compose", "-p", self.project, "-f", str(self.file), *args,
                  env=environment, timeout=timeout)  # fmt: skip

    def containers(self, service: str) -> list[dict[str, Any]]:
        """`docker inspect` of the service's containers, stopped ones included."""
        ids = self.compose("ps", "-a", "-q", service).stdout.split()
        if not ids:
            return []
        return json.loads(sh("docker", "inspect", *ids).stdout)

    def volume(self, name: str) -> Path:
        found = sh("docker", "volume", "inspect", f"{self.project}_{name}").stdout
        return Path(json.loads(found)[0]["Mountpoint"])

    def down(self) -> None:
        self.compose("down", "-v", "--remove-orphans", timeout=300)
