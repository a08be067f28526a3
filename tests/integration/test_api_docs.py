"""/docs and /redoc work offline: the real aggregator's pages, rendered by headless Chromium with
every name but loopback unresolvable, show our endpoints and ask for nothing off the machine."""

import asyncio
import json
import shutil
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit
from uuid import uuid4

import httpx
import pytest

from aggregator.settings import AggregatorSettings
from simulators.mosquitto import Mosquitto
from tests.integration.aggregator_support import EDGE, SITE, running_aggregator

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


async def test_docs_pages_render_offline_in_chromium(
    settings: AggregatorSettings, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (apt-get install chromium)")
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
