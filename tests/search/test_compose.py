from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.search.workers import check_exact

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def expand(text: str, env: dict[str, str]) -> str:
    """Compose's ${VAR:-default} and ${VAR} substitution."""

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(3)
        return env.get(name) or (default if default is not None else "")

    return re.sub(r"\$\{(\w+)(:-([^}]*))?\}", sub, text)


def command(service: str, env: dict[str, str]) -> list[str]:
    words = [expand(word, env) for word in compose()["services"][service]["command"]]
    return [sys.executable if words[0] == "python" else words[0], *words[1:]]


def test_the_compose_file_has_the_services_in_order() -> None:
    c = compose()
    services = c["services"]
    assert set(services) == {"postgres", "init", "worker", "dashboard"}
    assert "healthcheck" in services["postgres"] and "pgdata" in c["volumes"]
    assert services["init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["worker"]["depends_on"]["init"]["condition"] == (
        "service_completed_successfully"
    )
    assert "--create-only" in services["init"]["command"]
    worker = services["worker"]["command"]
    assert worker[worker.index("--threads") + 1] == "${THREADS:-1}"
    assert services["dashboard"]["command"][0] == "optuna-dashboard"
    assert services["dashboard"]["ports"] == ["${DASHBOARD_PORT:-8080}:8080"]
    assert (ROOT / "Dockerfile").read_text().count("torch==") == 1
    # The storage URL is written once, and every search service reads that one.
    assert (ROOT / "docker-compose.yml").read_text().count("postgresql+psycopg://") == 1
    for name in ("init", "worker", "dashboard"):
        assert c["x-storage"] in services[name]["command"], name


@pytest.mark.postgres
def test_the_worker_command_from_the_file_reaches_the_total(pg_url: str, tmp_path: Path) -> None:
    env = {"STORAGE_URL": pg_url, "TRIALS": "6", "EPOCHS": "2", "STUDY": "compose",
           "FINALISTS": "0"}  # fmt: skip
    init = subprocess.run(command("init", env), cwd=tmp_path, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert init.returncode == 0, init.stderr
    procs = [
        subprocess.Popen(command("worker", env), cwd=tmp_path, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
        for _ in range(3)
    ]  # fmt: skip
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    check_exact(pg_url, "compose", 6)


def test_the_gpu_override_merges_with_the_compose_file() -> None:
    """The NVIDIA override is checked by compose itself (it is not run: no GPU here)."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (.ci/run installs it)")
    r = subprocess.run(
        ["docker-compose", "-f", "docker-compose.yml", "-f", "docker-compose.gpu.yml", "config"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    merged = yaml.safe_load(r.stdout)["services"]
    for name in ("init", "worker"):
        [device] = merged[name]["deploy"]["resources"]["reservations"]["devices"]
        assert device["capabilities"] == ["gpu"]
    for name in ("init", "worker", "dashboard"):
        assert "cu128" in merged[name]["build"]["args"]["TORCH_INDEX_URL"]
    assert "search.run" in str(merged["worker"]["command"])  # the services themselves kept
