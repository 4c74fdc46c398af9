"""Finding ComfyUI: COMFYUI_PATH, else the pack's parent ComfyUI/ (custom_nodes/<pack>), else ~/comfy/ComfyUI."""
from pathlib import Path

import pytest

from workshop.headless import host


def fake_host(path: Path) -> Path:
    (path / "comfy").mkdir(parents=True)
    for f in ("main.py", "nodes.py", "comfy/samplers.py"):
        (path / f).write_text("")
    return path


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.delenv("COMFYUI_PATH", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setattr(host, "PACK_DIR", tmp_path / "elsewhere" / "ComfyUI-InvertEdit")
    return tmp_path


def test_order_env_then_parent_then_home(env, monkeypatch):
    assert host.find_host() is None
    assert "COMFYUI_PATH" not in host.host_missing_reason() and "~/comfy/ComfyUI" in host.host_missing_reason()

    home = fake_host(env / "home" / "comfy" / "ComfyUI")
    assert host.find_host() == home.resolve()

    parent = fake_host(env / "install" / "ComfyUI")
    monkeypatch.setattr(host, "PACK_DIR", parent / "custom_nodes" / "ComfyUI-InvertEdit")
    assert host.find_host() == parent.resolve()

    explicit = fake_host(env / "explicit")
    monkeypatch.setenv("COMFYUI_PATH", str(explicit))
    assert host.find_host() == explicit.resolve()


def test_an_explicit_path_that_is_not_a_host_is_not_replaced(env, monkeypatch):
    fake_host(env / "home" / "comfy" / "ComfyUI")
    monkeypatch.setenv("COMFYUI_PATH", str(env / "nothing-here"))
    assert host.find_host() is None
    assert "COMFYUI_PATH: " + str(env / "nothing-here") in host.host_missing_reason()
