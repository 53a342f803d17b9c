"""scripts/check-stack, read (running it needs root and a container engine: .ci/run does that).
The README's compose walkthrough it runs is the production path, in order, and is valid bash."""

from __future__ import annotations

import os
import re
import subprocess

from tests.deploy.conftest import ROOT

SCRIPT = ROOT / "scripts" / "check-stack"


def walkthrough_block() -> str:
    # the same extraction as the script's (sed between the markers, inside the bash fence)
    done = subprocess.run(
        [
            "bash",
            "-c",
            f"""sed -n '/<!-- compose-walkthrough:start -->/,/<!-- compose-walkthrough:end -->/p' "{ROOT / "README.md"}" |
  sed -e '1,/^```bash$/d' -e '/^```$/,$d'""",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout


def test_the_script_is_executable_valid_bash_and_strict() -> None:
    assert os.access(SCRIPT, os.X_OK)
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, timeout=30).returncode == 0
    text = SCRIPT.read_text()
    assert "set -euo pipefail" in text
    assert "docker info" in text  # the engine is chosen by a daemon answering, not by a binary existing
    assert "--format docker" in text  # HEALTHCHECK survives buildah
    assert "trap teardown EXIT" in text


def test_it_tears_down_only_its_own_project() -> None:
    text = SCRIPT.read_text()
    assert "prune" not in text.replace("never a prune", "")  # the image store and volumes are shared
    removals = [line for line in text.splitlines() if re.search(r"\b(rm|rmi|volume rm|network rm)\b", line)]
    for line in removals:
        if "podman" in line and ("rm -f" in line or "volume rm" in line):
            assert "$PROJECT" in line or "PROJECT" in line or "previous" in line, line


def test_the_compose_walkthrough_is_the_production_path_in_order() -> None:
    block = walkthrough_block()
    assert block.strip()
    assert subprocess.run(["bash", "-n"], input=block, text=True, timeout=30).returncode == 0
    steps = [
        "vocalborn users create",  # an admin, from the CLI only
        "/api/v1/admin/therapist-invitations",
        '\\"invitation_code\\"',  # the therapist registers with the invitation's code
        '\\"role\\":\\"learner\\"',
        "/api/v1/practice/sentences",
        "/api/v1/practice/sessions",
        "/records",
        "/api/v1/tasks/analysis/submit",
        "/status",
        "/result",
    ]
    positions = [block.find(step) for step in steps]
    assert all(p >= 0 for p in positions), dict(zip(steps, positions, strict=True))
    assert positions == sorted(positions), dict(zip(steps, positions, strict=True))
    assert "--role admin" in block
    assert "| field code)" in block  # the invitation answers `code`, registration takes `invitation_code`
