"""The results view (MCP App) in a real browser: headless Chromium from Debian, fed a real sandbox result.

A small host shim stands in for Claude/VS Code: it renders the `ui://` resource in an iframe, answers the
App's `ui/initialize`, hands it the tool input and a real (paged) result, and answers its tools/call
requests with what our server answered for the same arguments. The shim then drives the page (filter,
sort, Export CSV) and writes what the table shows into its own DOM, which `--dump-dom` returns. A second
run takes the screenshot. Chromium's net log must show no network request at all.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from mcp.types import TextResourceContents

from databar_mcp.app.server import build_server
from databar_mcp.sandbox import SandboxServer
from databar_mcp.ui import RESULTS_URI, results_html
from databar_mcp.ui.app import script_hash
from tests.conftest import lead, make_settings, structured
from tests.locks import debian_installs

ROWS = [lead(f"F{i}", f"L{i}", "example.com" if i % 3 else "nowhere.invalid") for i in range(20)]
ARGS: dict[str, Any] = {"waterfall": "email_getter", "params": ROWS, "enrichments": [833, 966]}
FIRST_PAGE = 8
SCREENSHOT = Path(__file__).resolve().parents[2] / ".cache" / "screenshots" / "results_app.png"

SHIM = (Path(__file__).resolve().parents[1] / "app_host_shim.html").read_text(encoding="utf-8")


def chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and hasattr(os, "geteuid") and os.geteuid() == 0:  # CI runs as root: install it, only when missing
        with debian_installs():  # one worker installs; the others find it when they get the lock
            if not shutil.which("chromium"):
                env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
                install = [apt, "install", "-y", "--no-install-recommends", "chromium"]
                if subprocess.run(install, env=env, check=False, capture_output=True, timeout=900).returncode != 0:  # noqa: S603
                    subprocess.run([apt, "update"], env=env, check=False, capture_output=True, timeout=300)  # noqa: S603
                    subprocess.run(install, env=env, check=False, capture_output=True, timeout=900)  # noqa: S603
        found = shutil.which("chromium")
        if found:
            return found
    reason = "chromium (the Debian package) is missing and cannot be installed here (not root, or no apt-get)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


def browse(binary: str, page: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - the Debian browser on our own file
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-default-apps",
            "--disable-sync",
            "--allow-file-access-from-files",
            "--window-size=1200,900",
            "--virtual-time-budget=15000",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def write_shim(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(SHIM.replace("__DATA__", json.dumps(data).replace("</", "<\\/")), encoding="utf-8")
    return path


def host_report(binary: str, shim: Path, *extra: str, query: str = "") -> dict[str, Any]:
    """Load the shim (and the App inside it); return what the shim wrote about the App's table."""
    done = browse(binary, shim, *extra, "--dump-dom", shim.as_uri() + query)
    match = re.search(r'<pre id="report">(.*?)</pre>', done.stdout, re.DOTALL)
    assert match and match.group(1) != "pending", done.stdout[-2000:] + done.stderr[-2000:]
    return json.loads(match.group(1).replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))


def page_requests(netlog: Path) -> list[str]:
    """URLs the pages asked for over the network (the browser's own background requests have no origin)."""
    log = json.loads(netlog.read_text(encoding="utf-8", errors="replace"))
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls: list[str] = []
    for event in log["events"]:
        params = event.get("params") or {}
        url = str(params.get("url", ""))
        local = not url or url.startswith(("file:", "about:", "data:", "blob:"))
        if event["type"] == start and params.get("initiator") != "not an origin" and not local:
            urls.append(url)
    return urls


def png_size_and_colours(path: Path) -> tuple[int, int, int]:
    """Width, height and the number of distinct byte values in the decoded scanlines (a blank page has ~1)."""
    raw = path.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    pos, idat = 8, b""
    while pos < len(raw):
        (length,) = struct.unpack(">I", raw[pos : pos + 4])
        kind = raw[pos + 4 : pos + 8]
        if kind == b"IDAT":
            idat += raw[pos + 8 : pos + 8 + length]
        pos += 12 + length
    return width, height, len(set(zlib.decompress(idat)))


def test_the_page_has_no_remote_code_and_no_network_api() -> None:
    html = results_html()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:|//)""", html, re.IGNORECASE)
    for api in ("fetch(", "XMLHttpRequest", "WebSocket", "EventSource", "sendBeacon", "import(", "innerHTML"):
        assert api not in html, api
    assert "connect-src 'none'" in html


def csp_of(html: str) -> dict[str, list[str]]:
    match = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)"', html)
    assert match is not None
    return {d.split()[0]: d.split()[1:] for d in match.group(1).split(";") if d.strip()}


def test_the_pages_csp_allows_its_own_script_by_hash_and_nothing_inline() -> None:
    """Issue 22 (5): escaping must not be the only defence against a hostile value in a row."""
    html = results_html()
    scripts = re.findall(r"<script>(.*?)</script>", html, re.DOTALL)
    assert len(scripts) == 1
    assert csp_of(html)["script-src"] == [f"'sha256-{script_hash(scripts[0])}'"]
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handler (the hash would not allow it anyway)


def test_markup_that_escaping_missed_runs_no_script(tmp_path: Path) -> None:
    """Issue 22 (5): the page with a script and an event handler slipped into it, as a row value escaping
    missed would be: the browser runs neither (under `script-src 'unsafe-inline'` it ran both), while the
    page's own script runs (the other browser tests use the view)."""
    binary = chromium()
    hostile = (
        '<script>document.documentElement.dataset.injected = "script"</script>'
        '<img src="data:," onerror="document.documentElement.dataset.handler = \'ran\'">'
    )
    page = tmp_path / "hostile.html"
    html = results_html()
    page.write_text(html.replace('<div id="note"', hostile + '<div id="note"', 1), encoding="utf-8")
    done = browse(binary, page, "--dump-dom", page.as_uri())
    head = re.search(r"<html[^>]*>", done.stdout)
    assert head is not None, done.stdout[-2000:] + done.stderr[-2000:]
    assert "data-injected" not in head.group(0) and "data-handler" not in head.group(0), head.group(0)
    assert 'id="shown"' in done.stdout  # the page itself loaded


def test_the_network_check_sees_a_page_request(tmp_path: Path) -> None:
    """The control for the check below: a page that does fetch is caught."""
    binary = chromium()
    page = tmp_path / "fetching.html"
    page.write_text("<script>fetch('http://127.0.0.1:9/probe').catch(() => {})</script>", encoding="utf-8")
    netlog = tmp_path / "netlog.json"
    browse(binary, page, f"--log-net-log={netlog}", "--dump-dom", page.as_uri())
    assert page_requests(netlog) == ["http://127.0.0.1:9/probe"]


@pytest.mark.anyio
async def test_the_results_view_shows_a_real_result_sortable_filterable_and_exports_csv(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    binary = chromium()
    async with Client(build_server(make_settings(sandbox, tmp_path))) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        page = await client.read_resource(RESULTS_URI)
        run = structured(await client.call_tool("run_bulk_waterfall", ARGS))
        task_id = run["task_id"]
        first = await client.call_tool("get_task", {"task_id": task_id, "limit": FIRST_PAGE})
        rest_args = {"task_id": task_id, "offset": FIRST_PAGE, "limit": 500, "wait_seconds": 0}
        rest = await client.call_tool("get_task", rest_args)
        export_args = {"task_id": task_id, "format": "csv"}
        export = await client.call_tool("export_task_result", export_args)

    assert (listed["run_bulk_waterfall"].meta or {})["ui"]["resourceUri"] == RESULTS_URI
    assert (listed["get_task"].meta or {})["ui"]["resourceUri"] == RESULTS_URI
    content = page.contents[0]
    assert isinstance(content, TextResourceContents) and content.mime_type == "text/html;profile=mcp-app"

    def dumped(result: Any) -> dict[str, Any]:
        return result.model_dump(by_alias=True, mode="json", exclude_none=True)

    def key(name: str, args: dict[str, Any]) -> str:
        return f"{name} {json.dumps(dict(sorted(args.items())), separators=(',', ':'))}"

    data = {
        "html": content.text,
        "arguments": ARGS,
        "result": dumped(first),
        "total": len(ROWS),
        "answers": {key("get_task", rest_args): dumped(rest), key("export_task_result", export_args): dumped(export)},
    }
    shim = write_shim(tmp_path / "host.html", data)
    netlog = tmp_path / "netlog.json"
    report = host_report(binary, shim, f"--log-net-log={netlog}")

    rows = structured(first)["rows"] + structured(rest)["rows"]
    expected_found = [r["index"] for r in rows if r["data"] is not None]
    head = report["all"]["head"]
    col = {name: head.index(name) for name in ("#", "first_name", "found", "email", "provider", "credits")}
    shown = report["all"]["rows"]
    assert [int(r[col["#"]]) for r in shown] == list(range(len(ROWS)))
    assert [r[col["first_name"]] for r in shown] == [p["first_name"] for p in ROWS]
    assert [int(r[col["#"]]) for r in shown if r[col["found"]] == "found"] == expected_found
    for r in rows:
        cells = shown[r["index"]]
        if r["data"] is not None:
            assert cells[col["email"]] == r["data"]["email"] and cells[col["provider"]] == r["data"]["provider"]
            assert float(cells[col["credits"]]) == r["data"]["credits"]
    view = structured(rest)
    assert report["stats"]["total"] == str(len(ROWS)) and report["stats"]["found"] == str(len(expected_found))
    assert report["stats"]["missing"] == str(len(ROWS) - len(expected_found))
    assert float(report["stats"]["credits"]) == view["credits_spent"]
    assert [int(r[0]) for r in report["found"]["rows"]] == expected_found
    assert len(report["missing"]["rows"]) == len(ROWS) - len(expected_found)
    credits_desc = [float(r[col["credits"]]) for r in report["sortedDesc"]["rows"]]
    assert credits_desc == sorted(credits_desc, reverse=True)
    assert report["note"] == "CSV written to " + structured(export)["path"]
    assert report["calls"].count("tools/call get_task") == 1 and "tools/call export_task_result" in report["calls"]

    assert page_requests(netlog) == []

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    shot = browse(binary, shim, f"--screenshot={SCREENSHOT}", shim.as_uri() + "?shot=1")
    assert SCREENSHOT.exists(), shot.stderr[-2000:]
    width, height, colours = png_size_and_colours(SCREENSHOT)
    assert (width, height) == (1200, 900) and colours > 20


LIVE_POLL: dict[str, Any] = {"wait_seconds": 2, "limit": 100, "partial": True}  # the view's poll while a run works


def dumped(result: Any) -> dict[str, Any]:
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def call_key(name: str, args: dict[str, Any]) -> str:
    return f"{name} {json.dumps(dict(sorted(args.items())), separators=(',', ':'))}"


@pytest.mark.anyio
async def test_the_results_view_shows_progress_and_rows_while_a_run_works_and_the_same_final_table(
    sandbox: SandboxServer, tmp_path: Path
) -> None:
    """Issue 23 (6): the view sat at "processing 0/600" for 11.5 s, then jumped to 600/600. It now follows a
    run in short waits: progress moves and finished rows appear while it works; the final table is the one a
    finished result renders. Rows finish only when the test moves the sandbox clock; the answers the view gets
    are our server's, recorded at each step; the shim notes what the view showed each time it asked again."""
    binary = chromium()
    row_s = 1000.0
    sandbox.state.config.task_base_seconds = row_s
    sandbox.state.config.row_seconds = row_s
    answers: list[Any] = []
    async with Client(build_server(make_settings(sandbox, tmp_path))) as client:
        page = await client.read_resource(RESULTS_URI)
        running = await client.call_tool("run_bulk_waterfall", {**ARGS, "wait_seconds": 0})
        task_id = structured(running)["task_id"]
        poll = {"task_id": task_id, **LIVE_POLL}
        moved = 0.0
        for finished in (5, 12, len(ROWS)):
            target = row_s + (finished - 1) * row_s + 1  # row k is done at base + k * row_s
            sandbox.state.clock.advance(target - moved)
            moved = target
            answers.append(await client.call_tool("get_task", poll))
    views = [structured(a) for a in answers]
    assert structured(running)["done"] is False and [v["done"] for v in views] == [False, False, True]
    content = page.contents[0]
    assert isinstance(content, TextResourceContents)

    live = {
        "html": content.text,
        "arguments": ARGS,
        "result": dumped(running),
        "total": len(ROWS),
        "answers": {call_key("get_task", poll): [dumped(a) for a in answers]},
    }
    report = host_report(binary, write_shim(tmp_path / "live.html", live), query="?live=1")
    finished = {**live, "result": dumped(answers[-1]), "answers": {}}
    direct = host_report(binary, write_shim(tmp_path / "finished.html", finished), query="?live=1")

    assert report["calls"].count("tools/call get_task") == len(answers)
    before, first, second = report["seen"]
    assert (before["done"], before["table"]["rows"]) == ("0", [])  # as the run tool's answer left it
    found_early = [r for r in views[0]["rows"] if r["data"] is not None]
    assert found_early and all(r["index"] < 5 for r in found_early)
    assert first["status"] == "processing" and (first["done"], first["total"]) == ("5", str(len(ROWS)))
    assert first["bar"] == 5 and first["found"] == str(len(found_early))
    head = first["table"]["head"]
    shown = {int(r[head.index("#")]): r for r in first["table"]["rows"]}
    assert sorted(shown) == [r["index"] for r in found_early]  # only rows certainly finished, while it runs
    for r in found_early:
        assert shown[r["index"]][head.index("email")] == r["data"]["email"]
        assert shown[r["index"]][head.index("first_name")] == ROWS[r["index"]]["first_name"]
    assert second["status"] == "processing" and second["done"] == "12" and second["bar"] == 12
    assert len(second["table"]["rows"]) >= len(found_early)

    assert report["stats"]["status"] == "completed" and report["stats"]["done"] == str(len(ROWS))
    assert report["stats"]["found"] == str(views[-1]["rows_with_data"])
    assert report["all"] == direct["all"] and report["stats"] == direct["stats"]  # the same final table
    assert len(report["all"]["rows"]) == len(ROWS)
