"""/docs and /redoc work offline: the real aggregator's pages, rendered by headless Chromium with
every name but loopback unresolvable, show our endpoints and ask for nothing off the machine."""

import asyncio
import fcntl
import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import httpx
import pytest

from aggregator.roles import Role
from aggregator.settings import AggregatorSettings
from simulators.mosquitto import Mosquitto
from tests.integration.aggregator_support import EDGE, SITE, api_key, running_aggregator

RENDER_S = 60.0  # a bound on one Chromium run, never a wait standing in for a condition
PAGES = ("/docs", "/redoc")
LOOPBACK = {"127.0.0.1", "localhost", "[::1]", "::1"}


@pytest.fixture
def settings(mosquitto: Mosquitto, tmp_path: Path) -> AggregatorSettings:
    return AggregatorSettings(
        site=SITE,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'ledger.db'}",
        mqtt={"host": mosquitto.host, "port": mosquitto.port, "client_id": f"agg-{uuid4().hex}"},
        known_edges=[EDGE],
        api={"port": 0},
    )


class _Refs(HTMLParser):
    """Every src= and href= of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.refs += [v for k, v in attrs if k in ("src", "href") and v is not None]


def _with_host(refs: list[str]) -> list[str]:
    """The refs that name a host (http://, https:// or //): pages served here need none."""
    return [r for r in refs if urlsplit(r).netloc]


async def test_docs_pages_reference_nothing_off_the_machine(settings: AggregatorSettings) -> None:
    async with running_aggregator(settings) as url, httpx.AsyncClient(base_url=url) as http:
        for page in PAGES:
            response = await http.get(page)
            assert response.status_code == 200, page
            parser = _Refs()
            parser.feed(response.text)
            assert parser.refs, f"{page} loads no script or style at all"
            assert _with_host(parser.refs) == [], page
            # what keeps ReDoc's scripts from fetching their vendor's logo (Chromium test below)
            assert "img-src 'self' data:" in response.headers["Content-Security-Policy"], page
            for ref in parser.refs:  # and what they name is served here
                assert (await http.get(ref)).status_code == 200, f"{page}: {ref}"


def _chromium() -> str:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return chromium


async def test_docs_pages_render_offline_in_chromium(
    settings: AggregatorSettings, tmp_path: Path
) -> None:
    chromium = _chromium()
    async with running_aggregator(settings) as url:
        docs, redoc = await asyncio.gather(
            *(_render(chromium, url + page, tmp_path / page.strip("/")) for page in PAGES)
        )
    # Swagger UI: the operations and its "Authorize" button for our bearer API key.
    for text in ("/stock", "/movements", "/transactions/{txn_id}", "Authorize"):
        assert text in docs.dom, f"/docs does not show {text!r}"
    for text in ("/stock", "/movements", "/transactions/{txn_id}", "ApiKey"):
        assert text in redoc.dom, f"/redoc does not show {text!r}"
    for page, rendered in zip(PAGES, (docs, redoc), strict=True):
        assert rendered.hosts <= LOOPBACK, f"{page} asked for {rendered.hosts - LOOPBACK}"


class _Rendered:
    def __init__(self, dom: str, hosts: set[str]) -> None:
        self.dom = dom
        self.hosts = hosts


async def _render(chromium: str, url: str, profile: Path) -> _Rendered:
    """The page's DOM after its scripts ran, and the hosts the page asked for on the way.
    Chromium makes `profile` (a fresh user data dir) and writes its net log beside it."""
    net_log = profile.with_name(profile.name + "-net.json")
    process = await asyncio.create_subprocess_exec(
        *_offline_chromium(chromium, profile),
        f"--log-net-log={net_log}",
        "--virtual-time-budget=10000",
        "--dump-dom",
        url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), RENDER_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"chromium did not finish {url} within {RENDER_S} s") from None
    assert process.returncode == 0, f"chromium failed on {url}: {err.decode(errors='replace')}"
    return _Rendered(out.decode(), _page_hosts(net_log, url))


def _offline_chromium(chromium: str, profile: Path) -> list[str]:
    return [
        chromium,
        "--headless",
        "--no-sandbox",  # the suite may run as root
        "--disable-gpu",
        "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # offline: no name but loopback resolves, so a CDN asset would leave the page blank
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ]


def _page_hosts(net_log: Path, url: str) -> set[str]:
    """The hosts of every request the page made: the document and what it initiated. Chromium's
    own traffic (update checks and the like) has no page initiator and is not the page's doing."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(url))
    log = json.loads(net_log.read_text())
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    hosts: set[str] = set()
    for event in log["events"]:
        params = event.get("params", {})
        requested = params.get("url")
        if event["type"] != start_job or not isinstance(requested, str):
            continue
        if requested == url or params.get("initiator") == origin:
            hosts.add(urlsplit(requested).hostname or requested)
    return hosts


# Clicks through Swagger UI as a person would: Authorize with the key, then GET /stock's
# "Try it out" and "Execute"; answers the status and body the page shows. Each step polls the DOM
# for the element it needs (bounded), never a fixed wait.
TRY_STOCK_JS = """
(async (key) => {
  const until = async (find, what) => {
    for (let i = 0; i < 200; i++) {
      const found = find();
      if (found) return found;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error("not found: " + what);
  };
  const $ = (selector) => document.querySelector(selector);
  (await until(() => $(".btn.authorize"), "the Authorize button")).click();
  const input = await until(() => $(".auth-container input"), "the key field");
  Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, "value").set.call(input, key);
  input.dispatchEvent(new Event("input", { bubbles: true }));
  (await until(() => $(".auth-btn-wrapper .authorize"), "the dialog's Authorize")).click();
  (await until(() => $(".btn-done") || $(".close-modal"), "the dialog's Close")).click();
  const stock = await until(() => [...document.querySelectorAll(".opblock-get")].find(
    (op) => op.querySelector(".opblock-summary-path")?.dataset.path === "/stock"), "GET /stock");
  stock.querySelector(".opblock-summary-control").click();
  (await until(() => stock.querySelector(".try-out__btn"), "Try it out")).click();
  (await until(() => stock.querySelector(".execute"), "Execute")).click();
  const live = ".live-responses-table .response";
  const status = await until(() => stock.querySelector(live + " .response-col_status"), "answer");
  const body = stock.querySelector(live + " .response-col_description pre");
  return status.textContent.trim() + " " + (body ? body.textContent.trim() : "");
})(KEY)
"""


async def test_docs_authorize_sends_the_api_key(
    settings: AggregatorSettings, tmp_path: Path
) -> None:
    chromium = _chromium()
    key = api_key(settings.database_url, Role.VIEWER)
    async with (
        running_aggregator(settings) as url,
        _devtools(chromium, url + "/docs", tmp_path / "profile") as evaluate,
    ):
        shown = await evaluate(TRY_STOCK_JS.replace("KEY", json.dumps(key)))
    assert shown == "200 []", shown  # without the key it would be 401


@asynccontextmanager
async def _devtools(
    chromium: str, url: str, profile: Path
) -> AsyncIterator[Callable[[str], Awaitable[object]]]:
    """Offline Chromium on `url`, driven over the DevTools protocol on a pipe (fds 3 and 4);
    yields an evaluate(expression) that awaits the expression's promise in the page."""
    to_browser, from_browser = os.pipe(), os.pipe()

    def wire_fds() -> None:  # in the child: the protocol's fds are 3 (in) and 4 (out)
        high = [fcntl.fcntl(fd, fcntl.F_DUPFD, 10) for fd in (to_browser[0], from_browser[1])]
        os.dup2(high[0], 3)  # (by way of fds >= 10, so neither dup2 closes the other pipe)
        os.dup2(high[1], 4)

    process = await asyncio.create_subprocess_exec(
        *_offline_chromium(chromium, profile),
        "--remote-debugging-pipe",
        "about:blank",
        close_fds=False,
        preexec_fn=wire_fds,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    os.close(to_browser[0])
    os.close(from_browser[1])
    loop = asyncio.get_running_loop()
    pending = bytearray()
    ids = iter(range(1, 1_000_000))

    async def call(method: str, params: dict[str, object], session: str | None = None) -> Any:
        message: dict[str, object] = {"id": next(ids), "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(to_browser[1], json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in pending:
                chunk = await loop.run_in_executor(None, os.read, from_browser[0], 1 << 20)
                assert chunk, f"chromium closed its DevTools pipe on {url}"
                pending.extend(chunk)
            end = pending.index(b"\0")
            answer = json.loads(pending[:end])
            del pending[: end + 1]
            if answer.get("id") == message["id"]:
                assert "error" not in answer, answer
                return answer["result"]

    async def open_page() -> str:  # navigating after attaching: evaluate sees the page's DOM
        targets = (await call("Target.getTargets", {}))["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        attached = await call("Target.attachToTarget", {"targetId": page, "flatten": True})
        session: str = attached["sessionId"]
        navigated = await call("Page.navigate", {"url": url}, session)
        assert "errorText" not in navigated, navigated
        return session

    async def evaluate(session: str, expression: str) -> object:
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        result = await call("Runtime.evaluate", params, session)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"]["value"]

    try:
        session = await asyncio.wait_for(open_page(), RENDER_S)
        yield lambda expression: asyncio.wait_for(evaluate(session, expression), RENDER_S)
    finally:
        process.kill()
        await process.wait()
        os.close(to_browser[1])
        os.close(from_browser[0])
