"""The real ComfyUI server and the real frontend in headless Chromium, for tests/browser.

``comfy_server`` (module scope): ``python main.py --cpu --listen 127.0.0.1 --port N
--base-directory <tmp>`` as a subprocess, this pack installed as ``custom_nodes/ComfyUI-InvertEdit``
(a symlink to the repository), and the host's ``example.png`` in ``input/`` (the pack puts its bundled sample there itself).
Its log goes to ``<tmp>/comfyui.log``; a failing test that used the server shows the log's tail.
Where torchvision cannot be imported, the server is started with the same stand-in the headless
tools use (``workshop/headless/absent_torchvision.py``), as ComfyUI imports it at start-up.

``editor`` (module scope): a Chromium page on the server's editor, with ``window.app`` ready
(node definitions registered, the pack's among them).

Everything is skipped with one loud line when Playwright, the system Chromium or the frontend
package (``comfyui_frontend_package``) is missing; ``scripts/setup.sh`` installs them.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from workshop.headless.background import background
from workshop.headless.host import find_host

REPO = Path(__file__).resolve().parents[2]
PACK_LINK = "ComfyUI-InvertEdit"
STARTUP_TIMEOUT_S = 180
CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "chromium", "chromium-browser")

# Runs the host's main.py as __main__ (argv[1]: the host folder; the rest: main.py's arguments),
# after the torchvision stand-in where torchvision cannot be imported (see the module docstring).
LAUNCHER = """
import importlib.util, runpy, sys
spec = importlib.util.spec_from_file_location("invertedit_absent_torchvision", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
module.install()
host = sys.argv[2]
sys.argv = [host + "/main.py"] + sys.argv[3:]
sys.path.insert(0, host)
runpy.run_path(host + "/main.py", run_name="__main__")
"""


def chromium_path() -> str | None:
    for candidate in CHROMIUM_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    return None


def browser_missing_reason() -> str | None:
    """Why the browser tests cannot run here (None if they can)."""
    missing = []
    if importlib.util.find_spec("playwright") is None:
        missing.append("Python Playwright (pip install playwright)")
    if chromium_path() is None:
        missing.append("Chromium (apt-get install chromium)")
    if importlib.util.find_spec("comfyui_frontend_package") is None:
        missing.append("the ComfyUI frontend (pip install comfyui-frontend-package)")
    return ", ".join(missing) or None


@pytest.fixture(scope="session")
def browser_available(skip_loudly):
    reason = browser_missing_reason()
    if reason:
        skip_loudly(f"BROWSER TESTS SKIPPED: {reason} missing; run scripts/setup.sh.")
    return chromium_path()


@dataclass
class Server:
    url: str
    base: Path
    log: Path
    process: subprocess.Popen

    @property
    def input_dir(self) -> Path:
        return self.base / "input"

    @property
    def output_dir(self) -> Path:
        return self.base / "output"

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def get(self, path: str, timeout: float = 30):
        with urllib.request.urlopen(self.url + path, timeout=timeout) as response:
            return json.loads(response.read())

    def set_setting(self, name: str, value) -> None:
        """Store a frontend setting of the server's (default) user, as the settings dialog does."""
        request = urllib.request.Request(self.url + f"/settings/{name}", data=json.dumps(value).encode(),
                                         method="POST", headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare_base(base: Path, host: Path) -> None:
    (base / "custom_nodes").mkdir(parents=True)
    (base / "custom_nodes" / PACK_LINK).symlink_to(REPO, target_is_directory=True)
    inputs = base / "input"
    inputs.mkdir()
    # the pack supplies its bundled sample image and inversion itself when the server loads it
    if (host / "input" / "example.png").is_file():  # the image the checkpoint workflows name
        shutil.copyfile(host / "input" / "example.png", inputs / "example.png")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGINT)  # main.py stops on Ctrl-C, but after a run its worker thread can hold it
    try:                                # for 20 s and more: nothing of the server is read after this, so 3 s
        process.wait(timeout=3)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)



def start(base: Path, host: Path, log_mode: str = "wb") -> Server:
    """Start the real server on ``base`` (prepared by ``_prepare_base``) on a free port, without
    waiting for it (``wait_ready``). ``log_mode`` "ab" keeps the log of a server started on ``base``
    before."""
    port = _free_port()
    log = base / "comfyui.log"
    command = [sys.executable, "-c", LAUNCHER, str(REPO / "workshop" / "headless" / "absent_torchvision.py"),
               str(host), "--cpu", "--listen", "127.0.0.1", "--port", str(port), "--base-directory", str(base),
               "--database-url", "sqlite:///:memory:"]
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(log, log_mode) as out:
        process = subprocess.Popen(command, cwd=host, stdout=out, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True, **background())
    return Server(f"http://127.0.0.1:{port}", base, log, process)


def wait_ready(server: Server) -> Server:
    """Wait until ``server`` answers; RuntimeError with its log's tail if it exits or stays silent."""
    process, deadline = server.process, time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"ComfyUI exited with status {process.returncode} while starting; its log "
                               f"({server.log}) ends:\n{server.tail()}")
        try:
            server.get("/system_stats", timeout=5)
            return server
        except (urllib.error.URLError, ConnectionError, TimeoutError, json.JSONDecodeError):
            pass
        if time.monotonic() > deadline:
            _stop(process)
            raise RuntimeError(f"ComfyUI did not answer at {server.url} within {STARTUP_TIMEOUT_S}s; its log "
                               f"ends:\n{server.tail()}")
        time.sleep(1)


def launch(base: Path, host: Path, log_mode: str = "wb") -> Server:
    """Start the real server on ``base`` and wait until it answers (``start``, ``wait_ready``)."""
    return wait_ready(start(base, host, log_mode))


# The server of the session's browser tests, started at collection (``pytest_collection_modifyitems``)
# so that it boots (about 40 s of imports) on the machine's second core while the other tests run.
_EARLY: dict = {}


def _is_browser(item) -> bool:
    return "tests/browser/" in str(item.fspath).replace("\\", "/")


def pytest_collection_modifyitems(config, items):
    """The browser tests run last, and their server starts now, in the background, where they will
    run (a host and the browser are present, not a collect-only run, not a pytest-xdist worker)."""
    browser = [item for item in items if _is_browser(item)]
    if not browser or len(browser) == len(items):
        return
    items[:] = [item for item in items if not _is_browser(item)] + browser
    host = find_host()
    if host is None or browser_missing_reason() or config.option.collectonly or "server" in _EARLY:
        return
    if os.environ.get("PYTEST_XDIST_WORKER"):   # every worker collects every test: the module's fixture starts it
        return
    base = Path(tempfile.mkdtemp(prefix="invertedit-comfy-server-"))
    _prepare_base(base, host)
    _EARLY["server"] = start(base, host)


def pytest_sessionfinish(session, exitstatus):
    """An early server no test took is stopped."""
    server = _EARLY.pop("server", None)
    if server is not None:
        _stop(server.process)


@pytest.fixture(scope="module")
def comfy_server(browser_available, tmp_path_factory):
    """The real ComfyUI server on a free port, CPU only, with this pack installed (the one started
    at collection, where there is one)."""
    host = find_host()
    assert host is not None  # tests/conftest.py skips tests/browser loudly without a host
    early = _EARLY.pop("server", None)
    try:
        if early is not None:
            server = wait_ready(early)
        else:
            base = tmp_path_factory.mktemp("comfy_server")
            _prepare_base(base, host)
            server = launch(base, host)
    except RuntimeError as e:
        pytest.fail(str(e))
    try:
        yield server
    finally:
        _stop(server.process)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test that used the server gets the tail of the server's log in its report."""
    outcome = yield
    report = outcome.get_result()
    server = getattr(item, "funcargs", {}).get("comfy_server")
    if report.failed and isinstance(server, Server):
        report.sections.append((f"ComfyUI server log, last lines ({server.log})", server.tail(40)))


# ------------------------------------------------------------------------------------ the page

# Collects, per load, the missing node types the frontend reports to extensions.
_CAPTURE_EXTENSION = """() => {
  window.__invertedit = {missing: []};
  window.app.registerExtension({
    name: "invertedit.browser-test",
    async afterConfigureGraph(missingNodeTypes) {
      window.__invertedit.missing.push(...(missingNodeTypes || []).map(t => typeof t === "string" ? t : t.type));
    },
  });
}"""

def close_dialogs(page) -> None:
    """Close the open dialogs (Escape, as a user would)."""
    for _ in range(3):
        if not page.locator(".p-dialog").filter(visible=True).count():
            return
        page.keyboard.press("Escape")
        page.wait_for_timeout(200)


@dataclass
class Editor:
    page: object
    messages: list  # (kind, text) console errors and page errors, as they come
    startup_messages: list
    workarounds: list

    def close_dialogs(self) -> None:
        close_dialogs(self.page)


@pytest.fixture(scope="module")
def editor(comfy_server, browser_available):
    """A headless Chromium page on the editor, ``window.app`` ready with the pack's nodes."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=browser_available, headless=True, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            messages: list = []
            page.on("console", lambda m: messages.append(("console." + m.type, m.text))
                    if m.type in ("error", "assert") else None)
            page.on("pageerror", lambda e: messages.append(("pageerror", str(e))))
            page.on("response", lambda r: messages.append(("http", f"{r.status} {r.url}"))
                    if r.status >= 400 else None)
            # A new user's first visit opens the template browser, which frontend 1.28 opens once its templates
            # have loaded, after the page is ready: a returning user (the tutorial done) does not see it.
            comfy_server.set_setting("Comfy.TutorialCompleted", True)
            page.goto(comfy_server.url + "/")
            page.wait_for_function("() => window.app && window.app.vueAppReady && window.app.graph && "
                                   "window.LiteGraph && 'InvertEditDDIMInvert' in LiteGraph.registered_node_types",
                                   timeout=120_000)
            page.wait_for_timeout(500)  # the default graph's image previews, the settings
            close_dialogs(page)  # a new user's first visit opens the template browser
            page.evaluate(_CAPTURE_EXTENSION)
            workarounds = []   # none: the page is driven as a user's browser (frontend 1.27's needed one, issue 78)
            startup = list(messages)
            messages.clear()
            yield Editor(page, messages, startup, workarounds)
        finally:
            browser.close()
