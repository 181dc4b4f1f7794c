"""Benchmark (issue 16): what an idle open Train tab costs the server, in % of one core.

Starts the dashboard on a family, opens its Train page in headless Chromium, waits for it to settle,
then reads the server process's CPU time (utime + stime from /proc, its children included) over
--seconds with the tab open and idle (no job queued or running). Prints the share of one core.

    python benchmarks/bench_idle.py --family checkpoints/demo --seconds 10
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cpu_ticks(pid: int) -> int:
    """utime + stime of a process and its reaped children (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(fields[i]) for i in (11, 12, 13, 14))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", default="checkpoints/demo")
    ap.add_argument("--seconds", type=float, default=10.0)
    a = ap.parse_args()
    family = Path(a.family).resolve()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "MODPO_CHECKPOINTS": str(family.parent)}
    server = subprocess.Popen([sys.executable, "-m", "streamlit", "run", str(REPO / "dashboard" / "app.py"),
                               "--server.port", str(port), "--server.headless", "true"], cwd=REPO, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2):
                    break
            except OSError:
                if time.time() > deadline:
                    raise SystemExit("the dashboard did not start") from None
                time.sleep(0.5)
        from playwright.sync_api import sync_playwright
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--headless", "--no-sandbox"])
            page = browser.new_page()
            page.goto(f"{url}/train?family={family.name}")
            page.get_by_role("heading", name="Train a new weighting").wait_for(timeout=60_000)
            time.sleep(3)  # let the first render settle
            ticks, start = cpu_ticks(server.pid), time.perf_counter()
            time.sleep(a.seconds)
            used = (cpu_ticks(server.pid) - ticks) / os.sysconf("SC_CLK_TCK")
            wall = time.perf_counter() - start
            browser.close()
        print(f"idle Train tab on {family.name}: server used {used:.2f} s of CPU in {wall:.1f} s "
              f"= {100 * used / wall:.1f}% of one core")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)


if __name__ == "__main__":
    main()
