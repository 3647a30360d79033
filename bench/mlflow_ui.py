"""How long ``mlflow ui`` takes to answer on an offline machine, with and without the README's
settings.

MLflow's server imports litellm, which downloads a model cost map when it is imported unless
``LITELLM_LOCAL_MODEL_COST_MAP=True``. Each variant starts ``mlflow ui`` on a store whose tables
exist already and times, from the launch, the first ``/health`` answer and the first answer of
the experiments search the UI's start page makes; it also counts litellm's cost-map warnings.
``--unanswered-url`` points litellm at a local socket that accepts and never replies, as a
network that drops packets does (where a lookup fails at once, as here, a fetch costs little).

    python bench/mlflow_ui.py --repeats 2 --unanswered-url
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from _common import table, write_results

_opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SEARCH = "/ajax-api/2.0/mlflow/experiments/search?max_results=10"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with _opener.open(url, timeout=60) as response:
            return response.status == 200
    except OSError:
        return False


def silent_server() -> str:
    """A URL on 127.0.0.1 whose connections are accepted and never answered."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/model_prices.json"


def start_ui(store: Path, env: dict[str, str], workers: int, log: Path,
             deadline_s: float = 300) -> dict[str, Any]:
    """Seconds from launch to the first /health and experiments-search answers."""
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", f"sqlite:///{store}",
               "--port", str(port), "--workers", str(workers)]
    start = time.monotonic()
    with log.open("wb") as out:
        proc = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
        health = search = None
        try:
            while time.monotonic() - start < deadline_s and proc.poll() is None:
                if health is None and _answers(base + "/health"):
                    health = time.monotonic() - start
                if health is not None and _answers(base + SEARCH):
                    search = time.monotonic() - start
                    break
                time.sleep(0.2)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
    warnings = log.read_text("utf-8", errors="replace").count("cost map fetch")
    return {"health_s": health, "search_s": search, "cost_map_warnings": warnings}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--unanswered-url", action="store_true",
                        help="also time starts whose cost-map download is never answered")
    args = parser.parse_args()

    from argalign import tracking

    tmp = Path(tempfile.mkdtemp(prefix="mlflow-ui-bench-"))
    store = tmp / "mlflow.db"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{store}"
    tracking.open_store()  # the tables exist before any timed start
    base_env = {k: v for k, v in os.environ.items() if k != "LITELLM_LOCAL_MODEL_COST_MAP"}
    local = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    networks = {"offline": {}}
    if args.unanswered_url:
        networks["unanswered"] = {"LITELLM_MODEL_COST_MAP_URL": silent_server()}
    variants = [(f"{net}, {label}", {**base_env, **extra, **env}, workers)
                for net, extra in networks.items()
                for label, env, workers in (("default", {}, 4), ("local cost map", local, 4),
                                            ("local cost map, 1 worker", local, 1))]
    rows = []
    for repeat in range(args.repeats):
        for k, (name, env, workers) in enumerate(variants):
            found = start_ui(store, env, workers, tmp / f"ui-{repeat}-{k}.log")
            rows.append({"variant": name, "repeat": repeat + 1, **found})
            print(table([rows[-1]], list(rows[-1])).splitlines()[-1], flush=True)
    print(table(rows, ["variant", "repeat", "health_s", "search_s", "cost_map_warnings"]))
    path = write_results("mlflow_ui", {"repeats": args.repeats, "rows": rows})
    print(f"results: {path}")


if __name__ == "__main__":
    main()
