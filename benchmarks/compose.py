"""Benchmark: the compose stack for real (harness/stack.py): image build times, and for
1, 2 and 4 worker containers the time from `up` to the last worker's exit and finished trials
per minute, each on its own study of the same size in one PostgreSQL container.

    python benchmarks/compose.py [--trials 20] [--epochs 20] [--scales 1,2,4]

Needs root, docker.io, docker-compose and debootstrap (as the compose tests). The base image
is built once and kept by the engine; "base" appears in the build times only when it was built.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # harness/
from harness.ports import free_port
from harness.stack import Engine, Stack, build_images


def exited(stack: Stack, n: int) -> bool:
    found = stack.containers("worker")
    return len(found) == n and all(c["State"]["Status"] == "exited" for c in found)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--scales", default="1,2,4")
    args = p.parse_args()
    engine = Engine()
    engine.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            took = build_images(Path(tmp))
            print("build seconds:", json.dumps({k: round(v, 1) for k, v in took.items()}))
            stack = Stack(Path(tmp), "digitpairsbench", free_port(), free_port())
            stack.compose("up", "-d", "postgres")
            try:
                for scale in map(int, args.scales.split(",")):
                    env = {"STUDY": f"bench-{scale}", "TRIALS": str(args.trials),
                           "EPOCHS": str(args.epochs), "FINALISTS": "0"}  # fmt: skip
                    start = time.time()
                    stack.compose("up", "-d", "--scale", f"worker={scale}", "worker", env=env)
                    while not exited(stack, scale):
                        time.sleep(0.5)
                    seconds = time.time() - start
                    print(f"{scale} worker container(s): up to done {seconds:.1f} s, "
                          f"{60 * args.trials / seconds:.1f} trials/min")  # fmt: skip
                    stack.compose("rm", "-f", "-s", "worker", "init", env=env)
            finally:
                stack.down()
    finally:
        engine.stop()


if __name__ == "__main__":
    main()
