"""Shared test set-up.

Three kinds of tests live here:
- ``tests/pure``: the host-agnostic layers (``invertedit.inversion``, ``.attention``,
  ``.guidance``) and the toy world. They always run. (``pytest.ini`` puts the repository root
  on the path, so ``invertedit`` and ``workshop`` import as the packages they are.)
- ``tests/host``: everything that needs ComfyUI. The host is found as the README says
  (``COMFYUI_PATH``, the pack's parent ``ComfyUI/``, ``~/comfy/ComfyUI``); where none is
  found these tests are skipped with one loud line saying why.
- ``tests/browser``: the shipped workflows in the real frontend (headless Chromium) on a real
  ComfyUI server; skipped with the host tests, and with one loud line of their own where
  Playwright, Chromium or the frontend package is missing (``tests/browser/conftest.py``).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

# The machines are small and shared: one torch thread is faster and steadier than two.
torch.set_num_threads(1)

from workshop.headless.background import background  # noqa: E402  (after set_num_threads)
from workshop.headless.host import find_host, host_importable, host_missing_reason  # noqa: E402  (after set_num_threads)

HOST = find_host()
if HOST is None:
    _SKIP_LINE = ("HOST TESTS SKIPPED: ComfyUI was not found (" + host_missing_reason() + "). "
                  "Set COMFYUI_PATH or run scripts/setup.sh.")
elif host_importable() != HOST:
    _SKIP_LINE = (f"HOST TESTS SKIPPED: ComfyUI at {HOST} is not registered with this Python "
                  f"(it imports {host_importable() or 'no ComfyUI'}); run scripts/setup.sh.")
    HOST = None
else:
    _SKIP_LINE = None


def pytest_report_header(config):
    return _SKIP_LINE or f"ComfyUI host: {HOST}"


_LOUD_SKIPS: list[str] = []


LOUD = "[loud] "   # a skip reason that the run's summary repeats, red (``skip_loudly``)


def pytest_runtest_logreport(report):
    """Gathers the loud skips' lines (in the controller too, under pytest-xdist: the workers'
    reports come here)."""
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = str(report.longrepr[2]).removeprefix("Skipped: ")
        if reason.startswith(LOUD):
            _LOUD_SKIPS.append(reason.removeprefix(LOUD))


def pytest_terminal_summary(terminalreporter):
    for line in ([_SKIP_LINE] if _SKIP_LINE else []) + sorted(set(_LOUD_SKIPS)):
        terminalreporter.write_sep("!", line, red=True, bold=True)


@pytest.fixture(scope="session")
def skip_loudly():
    """``skip_loudly(line)``: skip this test and print ``line`` once, red, in the run's summary
    (for tests whose reference code or tool is absent, like the host tests)."""
    def skip(line: str):
        pytest.skip(LOUD + line)
    return skip


@pytest.fixture(scope="session")
def reference_copy():
    """``reference_copy(tmp, name, repo, parts, marker)``: ``tmp`` holding a copy of ``parts``
    (files or folders) of a reference repository, or None where it is absent. From a local
    checkout at ``$<NAME>_PATH`` (which must hold ``marker``), else from the snapshot the
    ``fetch`` tool leaves at ``$<NAME>_MIRROR`` (default ``/work/.mirror/<owner>+<repo>/repo``).
    Never committed; the parity tests run the copy unchanged."""
    def copy(tmp: Path, name: str, repo: str, parts: tuple[str, ...], marker: str) -> Path | None:
        tmp.mkdir(parents=True, exist_ok=True)
        local = os.environ.get(f"{name}_PATH")
        if local:
            if not (Path(local) / marker).is_file():
                return None
            for part in parts:
                src, dst = Path(local) / part, tmp / part
                dst.parent.mkdir(parents=True, exist_ok=True)
                (shutil.copytree if src.is_dir() else shutil.copy)(src, dst)
            return tmp
        mirror = os.environ.get(f"{name}_MIRROR", f"/work/.mirror/{repo.replace('/', '+')}/repo")
        if not Path(mirror).is_dir():
            return None
        archive = subprocess.run(["git", "--git-dir", mirror, "archive", "HEAD", *parts], capture_output=True, check=False)
        if archive.returncode != 0:
            return None
        subprocess.run(["tar", "-x", "-C", str(tmp)], input=archive.stdout, check=True)
        return tmp
    return copy


class ReferenceJob:
    """A reference run under way in a subprocess: ``result()`` waits for it and returns what it saved."""

    def __init__(self, process: subprocess.Popen, out: Path, log: Path):
        self.process, self.out, self.log = process, out, log

    def result(self):
        try:
            code = self.process.wait(timeout=1200)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        assert code == 0, f"the reference run failed:\n{self.log.read_text(errors='replace')[-3000:]}"
        return torch.load(self.out)


@pytest.fixture(scope="session")
def reference_run(host, bridge):
    """``reference_run(runner, checkout, tmp, models, **job)``: run ``tests/reference/<runner>``
    (unchanged reference code from ``checkout`` on its path) in a subprocess on the tiny
    ``models`` (MODEL, CLIP, VAE) given as diffusers modules with the real SD1 tokenizer, plus
    ``job``; returns what the runner saved. ``reference_run.start(...)`` (same arguments) starts it
    and returns a ``ReferenceJob`` at once: the run goes on, on the machine's other core, while
    the tests do (``tests/host/conftest.py``'s ``early_references``)."""
    import sys

    class Run:
        def start(self, runner: Path, checkout: Path, tmp: Path, models, **job) -> ReferenceJob:
            model, clip, vae = models
            job = {"unet": bridge.diffusers_unet(model), "text_encoder": bridge.diffusers_text_encoder(clip),
                   "vae": bridge.diffusers_vae(vae), "tokenizer": str(host.path / "comfy" / "sd1_tokenizer"), **job}
            torch.save(job, tmp / "job.pt")
            env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(checkout), str(runner.parent)]))
            log = tmp / "reference.log"
            with open(log, "wb") as stream:
                process = subprocess.Popen([sys.executable, str(runner), str(tmp / "job.pt"), str(tmp / "out.pt")],
                                           env=env, stdout=stream, stderr=subprocess.STDOUT, **background())
            return ReferenceJob(process, tmp / "out.pt", log)

        def __call__(self, runner: Path, checkout: Path, tmp: Path, models, **job):
            return self.start(runner, checkout, tmp, models, **job).result()
    return Run()


def pytest_collection_modifyitems(config, items):
    if HOST is not None:
        return
    skip = pytest.mark.skip(reason=_SKIP_LINE)
    for item in items:
        if any(part in str(item.fspath).replace("\\", "/") for part in ("tests/host", "tests/browser")):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def host(tmp_path_factory):
    """The booted host: ``.nodes`` (ComfyUI's nodes module), ``.pack`` (this pack as the host
    loaded it: use its submodules so that types match the nodes'), ``.dirs`` (input/output/temp)."""
    from workshop.headless.boot import boot

    root = tmp_path_factory.mktemp("comfy")
    return boot(HOST, base_dir=root)


@pytest.fixture(scope="session")
def tiny(host):
    """Tiny seeded models per family: ``tiny("sd1")`` -> (MODEL, CLIP, VAE), cached; the flow families
    (``"flux-dev"``, ``"flux-schnell"``, ``"sd3"``) from ``invertedit/demo/tiny_flow_models.py``."""
    cache: dict = {}

    def get(family: str = "sd1", seed: int = 0):
        key = (family, seed)
        if key not in cache:
            demo = host.pack.demo
            flow = family in demo.tiny_flow_models.FLOW_FAMILIES
            build = demo.tiny_flow_models.build_tiny_flow_models if flow else demo.tiny_models.build_tiny_models
            cache[key] = build(family, seed=seed)
        return cache[key]

    return get


@pytest.fixture(scope="session")
def bridge(host):
    """tests/diffusers_bridge.py, imported by path (it imports comfy: after the host is booted;
    ``tests`` as a package name could resolve to the host's own tests folder)."""
    import importlib.util
    import sys
    from pathlib import Path

    name = "invertedit_tests_diffusers_bridge"
    if name not in sys.modules:
        pytest.importorskip("diffusers")
        path = Path(__file__).resolve().parent / "diffusers_bridge.py"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="module")
def sd1_pipeline_parts(host, tiny, bridge):
    """The tiny SD1 model as a diffusers pipeline's parts (vae, text_encoder, tokenizer, unet;
    a UNet copy per test module: pipelines swap the attention processors of the UNet they hold),
    for the parity tests against diffusers' pipelines."""
    from transformers import CLIPTokenizer
    model, clip, vae = tiny("sd1")
    return dict(vae=bridge.diffusers_vae(vae), text_encoder=bridge.diffusers_text_encoder(clip),
                tokenizer=CLIPTokenizer.from_pretrained(str(host.path / "comfy" / "sd1_tokenizer"), model_max_length=77),
                unet=bridge.diffusers_unet(model))


@pytest.fixture(scope="session")
def unets(tiny, bridge):
    cache = {}

    def get(family):
        if family not in cache:
            cache[family] = bridge.diffusers_unet(tiny(family)[0])
        return cache[family]

    return get
