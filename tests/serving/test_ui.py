"""The operator page at /ui, in a real headless browser (Debian's chromium + chromedriver).

The app runs under uvicorn on 127.0.0.1 (a free port) in a thread; selenium drives chromium
against it: load the page, choose a point on the scatter, see the list change, choose by
preference weights and by a constraint, send a click and see the live count.
"""

from __future__ import annotations

import json
import shutil
import socket
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import WordEncoder

CHROMIUM = next(
    (p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", "/usr/bin/chromium-browser")
     if p and Path(p).is_file()),
    None,
)  # fmt: skip
CHROMEDRIVER = next(
    (p for p in ("/usr/bin/chromedriver", shutil.which("chromedriver") or "") if p and Path(p).is_file()),
    None,
)  # fmt: skip
BROWSER_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    from paretorec.serving import ServiceSettings, create_app

    settings = ServiceSettings(
        admin_token="t",
        feedback_url=str(tmp_path_factory.mktemp("ui") / "feedback.sqlite3"),
        encoder=WordEncoder(),
        handle_sighup=False,
    )
    port = _free_port()
    config = uvicorn.Config(
        create_app(tiny_bundle, settings), host="127.0.0.1", port=port, log_level="warning"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None or CHROMEDRIVER is None:
        pytest.skip(
            "the operator page test needs Debian's chromium and chromium-driver "
            f"(found chromium={CHROMIUM}, chromedriver={CHROMEDRIVER}); "
            "apt-get install chromium chromium-driver"
        )
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="paretorec-ui-")
    for argument in (*BROWSER_ARGS, f"--user-data-dir={profile}"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _post(url: str, body: dict[str, Any]) -> Any:
    request = urllib.request.Request(
        url, json.dumps(body).encode(), {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _wait(driver: Any, condition: Any, timeout: float = 15.0) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition)


def _list(driver: Any) -> tuple[str, list[str]]:
    """(served point id, item ids) as the page shows them, read in one script call (the
    rows may be replaced between two selenium calls)."""
    point, items = driver.execute_script(
        "const t = document.getElementById('list');"
        "return [t.getAttribute('data-point-id') || '',"
        " [...t.querySelectorAll('tbody tr')].map((r) => r.getAttribute('data-item-id'))];"
    )
    return point, list(items)


def _errors(driver: Any) -> str:
    return driver.find_element("id", "error").text


def test_operator_page_changes_the_list_with_the_point(browser: Any, base_url: str) -> None:
    user = "u0"
    front = json.loads(urllib.request.urlopen(f"{base_url}/front", timeout=30).read())
    lists = {
        p["id"]: [i["item_id"] for i in _post(f"{base_url}/recommend", {"user_id": user, "k": 10, "point": p["id"]})["items"]]
        for p in front["points"]
    }  # fmt: skip

    browser.get(f"{base_url}/ui")
    _wait(browser, lambda d: d.find_element("id", "status").get_attribute("data-ready") == "1")
    circles = browser.find_elements("css selector", "#scatter circle")
    assert len(circles) == len(front["points"])
    # the user picker is filled from /ui/users, and the page shows the first user's list
    assert browser.find_element("id", "user").get_attribute("value") == user
    _wait(browser, lambda d: len(_list(d)[1]) == 10)
    point, items = _list(browser)
    assert items == lists[int(point)], _errors(browser)
    # explanations: the history items behind each item, and what the policy did
    why = browser.execute_script(
        "return [...document.querySelectorAll('#list td.explain')].map((c) => c.textContent);"
    )
    assert len(why) == 10 and any(text.startswith("because of ") for text in why)

    # another user (the other community): another list at the same point
    other = _post(f"{base_url}/recommend", {"user_id": "u1", "k": 10, "point": int(point)})
    browser.execute_script(
        "const u = document.getElementById('user'); u.value = 'u1';"
        "u.dispatchEvent(new Event('change'));"
    )
    _wait(browser, lambda d: _list(d)[1] == [i["item_id"] for i in other["items"]])
    assert _list(browser)[1] != items
    browser.execute_script(
        "const u = document.getElementById('user'); u.value = 'u0';"
        "u.dispatchEvent(new Event('change'));"
    )
    _wait(browser, lambda d: _list(d)[1] == items)

    # choose a point on the scatter whose list differs: the page's list follows
    target = next(pid for pid, served in lists.items() if served != items)
    browser.find_element("css selector", f'#scatter circle[data-point-id="{target}"]').click()
    _wait(browser, lambda d: _list(d)[0] == str(target))
    _wait(browser, lambda d: _list(d)[1] == lists[target])
    assert "chosen" in browser.find_element(
        "css selector", f'#scatter circle[data-point-id="{target}"]'
    ).get_attribute("class")

    # other axes redraw the scatter with the same points
    before = [
        c.get_attribute("cy") for c in browser.find_elements("css selector", "#scatter circle")
    ]
    browser.execute_script(
        "const s = document.getElementById('y-objective'); s.value = 'novelty';"
        "s.dispatchEvent(new Event('change'));"
    )
    after = [
        c.get_attribute("cy") for c in browser.find_elements("css selector", "#scatter circle")
    ]
    assert len(after) == len(before) and after != before

    # preference weights: the page serves the weighted Chebyshev pick the API makes
    browser.execute_script(
        "const s = document.getElementById('weight-ild'); s.value = '5';"
        "s.dispatchEvent(new Event('input')); s.dispatchEvent(new Event('change'));"
    )
    weights = {o: 1.0 for o in front["objectives"]} | {"ild": 5.0}
    expected = _post(f"{base_url}/recommend", {"user_id": user, "k": 10, "preference": weights})
    _wait(browser, lambda d: _list(d)[0] == str(expected["point"]["id"]))
    assert _list(browser)[1] == [i["item_id"] for i in expected["items"]]
    assert browser.find_element(
        "css selector", 'input[name="mode"][value="preference"]'
    ).is_selected()

    # a constraint: maximise ILD subject to nDCG >= 0.9 x best
    browser.execute_script(
        "const set = (id, v) => { const s = document.getElementById(id); s.value = v;"
        " s.dispatchEvent(new Event('change')); };"
        "set('constraint-share', '0.9'); set('constraint-objective', 'ndcg');"
        "set('constraint-target', 'ild');"
    )
    expected = _post(
        f"{base_url}/recommend",
        {
            "user_id": user,
            "k": 10,
            "constraints": [{"objective": "ndcg", "op": ">=", "value": 0.9, "relative": True}],
            "optimize": "ild",
        },
    )
    _wait(browser, lambda d: _list(d)[0] == str(expected["point"]["id"]))
    assert _list(browser)[1] == [i["item_id"] for i in expected["items"]]
    assert not _errors(browser)

    # a click on an item is stored and the live count for the served point shows it
    served = _list(browser)[0]
    browser.find_element("css selector", "#list tbody tr button").click()
    _wait(
        browser,
        lambda d: d.find_elements("css selector", f'#counts tr[data-point-id="{served}"] td[data-count="1"]'),
        timeout=10,
    )  # fmt: skip
    feedback = json.loads(urllib.request.urlopen(f"{base_url}/front", timeout=30).read())[
        "feedback"
    ]
    assert feedback[served] == {"click": 1}


def test_page_and_script_are_served_without_outside_resources(base_url: str) -> None:
    page = urllib.request.urlopen(f"{base_url}/ui", timeout=30).read().decode()
    script = urllib.request.urlopen(f"{base_url}/ui/app.js", timeout=30).read().decode()
    assert '<script src="/ui/app.js">' in page
    for text in (page, script):
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
        assert "https://" not in text
    schema = json.loads(urllib.request.urlopen(f"{base_url}/openapi.json", timeout=30).read())
    assert not [path for path in schema["paths"] if path.startswith("/ui")]
