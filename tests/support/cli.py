"""Running the phm command line in a subprocess, and reading its one-line errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.sources import KEY


def phm(*args: str, key: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "OPENPHM_KEY"}
    if key:
        env["OPENPHM_KEY"] = KEY.decode()
    return subprocess.run(
        [sys.executable, "-m", "openphm", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]
