"""The study in optuna-dashboard, seen by a real headless Chromium; and the optuna CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from harness.ports import free_port
from search.execution.runner import METRIC
from tests.helpers import TINY, run_cli, run_tool

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dash")
    r = run_cli("search.run", "--trials", "4", "--workers", "1", "--study", "shown", *TINY,
                "--pruner", "none", cwd=root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    r = run_cli("search.final_eval", "--study", "shown", "--rounds", "2", "--no-ablation",
                "--ensemble", "1", cwd=root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return root


def serve(command: list[str], cwd: Path, port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=2):
                return proc
        except OSError:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else b""
            time.sleep(0.3)
    proc.kill()
    raise AssertionError("the dashboard did not start")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("install Debian's chromium and chromium-driver (.ci/run does)")
    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-quic", "--no-first-run", "--disable-component-update",
                "--disable-sync", "--window-size=1400,1000",
                f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def page_text(driver: webdriver.Chrome, url: str, expect: str) -> str:
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: expect in d.find_element(By.TAG_NAME, "body").text)
    return driver.find_element(By.TAG_NAME, "body").text


@pytest.mark.browser
@pytest.mark.parametrize("launcher", ["optuna-dashboard", "search.dashboard"])
def test_the_dashboard_shows_the_study_in_a_real_browser(
    launcher: str, study_dir: Path, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    port = free_port()
    if launcher == "optuna-dashboard":
        # The very command search.run prints, with a loopback port.
        printed = run_cli("search.run", "--trials", "4", "--workers", "1", "--study", "shown",
                          cwd=study_dir).stdout  # fmt: skip
        line = next(x for x in printed.splitlines() if x.startswith("open the dashboard:"))
        words = line.split(":", 1)[1].split()
        command = [str(Path(__import__("sys").executable).parent / words[0]), *words[1:]]
        command += ["--host", "127.0.0.1", "--port", str(port)]
    else:
        command = [__import__("sys").executable, "-m", "search.dashboard", "--study", "shown",
                   "--port", str(port)]  # fmt: skip
    server = serve(command, study_dir, port)
    try:
        base = f"http://127.0.0.1:{port}/dashboard"
        assert "shown" in page_text(browser, base, "shown")
        text = page_text(browser, f"{base}/studies/1", "History")
        assert "Intermediate values" in text and "Hyperparameter Importance" in text
        assert "final_eval.html" in text and "final_eval.json" in text  # the artifacts
        # The value's name on the history plot's axis, instead of "Objective 0".
        WebDriverWait(browser, 30).until(
            lambda d: METRIC in d.find_element(By.TAG_NAME, "body").text
        )
        assert "Objective 0" not in browser.find_element(By.TAG_NAME, "body").text
        WebDriverWait(browser, 30).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, ".js-plotly-plot svg.main-svg")
        )
        browser.save_screenshot(str(tmp_path / "study.png"))
        assert (tmp_path / "study.png").stat().st_size > 10_000
        # The final evaluation's note, with the gain over the default configuration.
        note = page_text(browser, f"{base}/studies/1/note", "Final evaluation: trial #")
        assert "default configuration" in note and "selection" in note  # the gain, the table
        trials = page_text(browser, f"{base}/studies/1/trials", "Trial 3")
        assert all(f"Trial {n}" in trials for n in range(4)) and "Trial 4" not in trials
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_the_optuna_cli_reads_the_study(study_dir: Path) -> None:
    url = f"sqlite:///{study_dir}/studies/shown.db"
    studies = run_tool("optuna", "studies", "--storage", url, "-f", "json", cwd=study_dir)
    assert studies.returncode == 0, studies.stderr
    [row] = json.loads(studies.stdout)
    assert row["name"] == "shown" and row["n_trials"] == 4
    best = run_tool("optuna", "best-trial", "--storage", url, "--study-name", "shown",
                    "-f", "json", cwd=study_dir)  # fmt: skip
    assert best.returncode == 0, best.stderr
    assert "family" in json.loads(best.stdout)["params"]
