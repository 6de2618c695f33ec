"""The README's curl calls run as shown against the app (in-process)."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from paretorec.serving import ServiceSettings, create_app

from .conftest import WordEncoder

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_curl_calls() -> list[dict[str, Any]]:
    """Each ``curl`` of the README's Serving section: method, path, headers, JSON body."""
    section = README.read_text().split("## Serving", 1)[1].split("\n## ", 1)[0]
    block = re.findall(r"```bash\n(.*?)```", section, flags=re.S)[0]
    calls = []
    for command in block.replace("\\\n", " ").splitlines():
        if not command.strip().startswith("curl"):
            continue
        words = shlex.split(command)
        url = next(w for w in words if w.startswith("localhost:"))
        headers = dict(words[i + 1].split(": ", 1) for i, word in enumerate(words) if word == "-H")
        body = next((words[i + 1] for i, word in enumerate(words) if word == "-d"), None)
        calls.append(
            {
                "method": "POST" if body is not None else "GET",
                "path": "/" + url.split("/", 1)[1],
                "headers": headers,
                "json": None if body is None else json.loads(body),
            }
        )
    return calls


def run_readme_calls(client: TestClient) -> list[Any]:
    answers = []
    for call in readme_curl_calls():
        response = client.request(
            call["method"], call["path"], headers=call["headers"], json=call["json"]
        )
        assert response.status_code == 200, (call, response.text)
        answers.append(response.json())
    return answers


def test_readme_curl_calls_work_as_shown(tiny_bundle: Path, tmp_path: Path) -> None:
    calls = readme_curl_calls()
    assert [c["path"] for c in calls] == ["/recommend", "/feedback", "/items", "/front"]
    assert "preference" in calls[0]["json"]
    token = calls[2]["headers"]["Authorization"].split()[1]
    settings = ServiceSettings(
        admin_token=token, feedback_url=str(tmp_path / "feedback.db"), encoder=WordEncoder()
    )
    with TestClient(create_app(tiny_bundle, settings)) as client:
        recommended, stored, added, front = run_readme_calls(client)
    assert recommended["point"]["chosen_by"] == "preference" and recommended["items"]
    assert stored == {"stored": 1, "duplicates": 0, "committed": True}
    assert added["items"] == [{"item_id": "new-1", "status": "created"}]
    assert front["feedback"] == {"none": {"click": 1}}
