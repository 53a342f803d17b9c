"""Email verification and password reset end to end on `vocalborn up` (the embedded default:
SQLite, bundled Redis and nats-server, the relay, the consumers and the local mail outbox): the
banner prints the mail outbox's address, the mails land in DATA_DIR/mail, `vocalborn mail list`
shows them, and their links work once. And a real analysis by a linked learner (the worker on the
bundled stack) gives the therapist one notification and one mail."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.notify.support import free_port, link_token
from tests.support import Api, wait_until
from tests.test_readme import SUITE_KEYS

pytestmark = pytest.mark.worker

PASSWORD = "correct-horse-battery-staple-9"


def test_verify_and_reset_on_vocalborn_up(tmp_path: Path) -> None:
    from vocalborn.notify import mailbox

    port, mail_port = free_port(), free_port()
    data = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if k not in SUITE_KEYS and not k.startswith(("NATS_", "SMTP_"))}
    log_path = tmp_path / "up.log"
    with open(log_path, "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "vocalborn.cli", "up", "--port", str(port), "--data-dir", str(data)]
            + ["--no-flower", "--worker-metrics-port", "0", "--concurrency", "1", "--mail-port", str(mail_port)],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            base = f"http://127.0.0.1:{port}"

            def serving() -> bool:
                assert up.poll() is None, log_path.read_text()
                try:
                    return httpx.get(f"{base}/health", timeout=1).status_code == 200
                except httpx.HTTPError:
                    return False

            wait_until(serving, 120, 0.3, "vocalborn up to serve")
            assert re.search(rf"Mail:\s+smtp://127\.0\.0\.1:{mail_port}\s+\(local mail outbox", log_path.read_text())
            email = f"up-{os.urandom(4).hex()}@example.com"
            r = httpx.post(
                f"{base}/api/v1/auth/register",
                json={"email": email, "password": PASSWORD, "name": "Up", "role": "learner"},
                timeout=30,
            )
            assert r.status_code == 202
            folder = mailbox.mail_dir(data)

            def mails(word: str) -> list[mailbox.Kept]:
                return [k for k in mailbox.list_mail(folder, 100, email) if word in k.subject]

            verify = wait_until(lambda: mails("確認"), 60, 0.3, "the verification mail")[0]
            found = mailbox.show(folder, verify.id)
            assert found is not None and f"http://127.0.0.1:{port}/#verify-email=" in found[1]
            token = link_token(found[1], "verify-email")
            assert httpx.post(f"{base}/api/v1/auth/verify-email", json={"token": token}, timeout=30).status_code == 200
            again = httpx.post(f"{base}/api/v1/auth/verify-email", json={"token": token}, timeout=30)
            assert again.status_code == 400

            listed = subprocess.run(
                [sys.executable, "-m", "vocalborn.cli", "mail", "list"],
                env={**env, "DATA_DIR": str(data)},
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert listed.returncode == 0 and email in listed.stdout, listed.stdout + listed.stderr

            assert (
                httpx.post(f"{base}/api/v1/auth/password-reset", json={"email": email}, timeout=30).status_code == 202
            )
            reset = wait_until(lambda: mails("密碼"), 60, 0.3, "the reset mail")[0]
            found = mailbox.show(folder, reset.id)
            assert found is not None
            token = link_token(found[1], "reset-password")
            new = "a-brand-new-horse-staple-7"
            done = httpx.post(
                f"{base}/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": new}, timeout=30
            )
            assert done.status_code == 200, done.text
            login = httpx.post(f"{base}/api/v1/auth/login", data={"username": email, "password": new}, timeout=30)
            assert login.status_code == 200
            headers = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert httpx.get(f"{base}/api/v1/auth/me", headers=headers, timeout=30).json()["email_verified"] is True
            twice = httpx.post(
                f"{base}/api/v1/auth/password-reset/confirm",
                json={"token": token, "new_password": new + "x"},
                timeout=30,
            )
            assert twice.status_code == 400

            # A real analysis: the linked therapist hears of it once, in the inbox and by mail.
            with httpx.Client(base_url=base, timeout=60) as client:
                api = Api(client)
                therapist, learner = api.register("therapist"), api.register("learner")
                code = client.post("/api/v1/links/invitations", headers=therapist["headers"], json={}).json()["code"]
                assert client.post("/api/v1/links/accept", headers=learner["headers"], json={"code": code}).is_success
                ready = api.ready_record(therapist, learner)
                task = api.submit(learner, ready["record"]["practice_record_id"])
                assert task.status_code == 202, task.text
                task_id = task.json()["task_id"]
                api.wait_for(learner, task_id, {"success"}, timeout=180)

                def inbox() -> list[dict[str, object]]:
                    got = client.get("/api/v1/notifications", headers=therapist["headers"]).json()
                    return [n for n in got if n["type"] == "analysis.succeeded"]

                notes = wait_until(inbox, 60, 0.3, "the therapist's notification")
                assert len(notes) == 1 and notes[0]["subject"]["task_id"] == task_id  # type: ignore[index]
                mail = wait_until(
                    lambda: [k for k in mailbox.list_mail(folder, 100, therapist["email"]) if "分析" in k.subject],
                    60,
                    0.3,
                    "the therapist's mail",
                )
                assert len(mail) == 1
        finally:
            up.terminate()
            try:
                up.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(up.pid, 9)
                up.wait()
    assert up.returncode == 0, log_path.read_text()[-3000:]
