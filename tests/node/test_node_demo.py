"""The distributed demo: worker nodes as OS processes; killing one loses no file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def test_killing_a_worker_node_mid_run_loses_no_file() -> None:
    limit = 200
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "demo.py"),
            "--nodes",
            "2",
            "--limit",
            str(limit),
            "--kill-node-after",
            "0.3s",
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    numbers = {
        key: int(value.replace(",", ""))
        for key, value in re.findall(
            r"^\s+(files parsed|files failed)\s+([\d,]+)", out.stdout, re.M
        )
    }
    assert numbers["files parsed"] + numbers["files failed"] == limit, out.stdout
    assert re.search(r"nodes lost\s+w2@\S+ \(noconnection\)", out.stdout), out.stdout
    assert "worker nodes           2" in out.stdout
