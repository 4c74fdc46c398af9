"""The host surface (issue 77): every ComfyUI name, member and options key the pack uses is listed in
``invertedit/hostkit/host_surface.py``, exactly (a new one fails here until it is listed, after its
history in the host's changelog is checked), and the installed host has each; every override of a host
method takes and passes on keywords it does not read; the flow techniques refuse a host config they
were not tested on."""
from __future__ import annotations

import ast
import inspect
from collections import defaultdict
from pathlib import Path

import pytest
import torch

PACK = Path(__file__).resolve().parents[2] / "invertedit"
HOST_ROOTS = ("comfy", "comfy_extras", "comfy_api", "folder_paths", "nodes", "node_helpers", "latent_preview",
              "execution", "server", "comfy_execution")


def _trees():
    for f in sorted(PACK.rglob("*.py")):
        yield f.relative_to(PACK.parent), ast.parse(f.read_text(encoding="utf-8"))


def used_symbols() -> dict[str, set[str]]:
    """The host names the pack uses (the longest dotted name of each use), with the files using them."""
    uses: dict[str, set[str]] = defaultdict(set)
    for f, tree in _trees():
        aliases = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.split(".")[0] in HOST_ROOTS:
                        aliases[a.asname or a.name.split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                    and node.module.split(".")[0] in HOST_ROOTS:
                for a in node.names:
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
                    uses[f"{node.module}.{a.name}"].add(str(f))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute):
                parts, n = [], node
                while isinstance(n, ast.Attribute):
                    parts.append(n.attr)
                    n = n.value
                if isinstance(n, ast.Name) and n.id in aliases:
                    uses[".".join([aliases[n.id], *reversed(parts)])].add(str(f))
    return {n: fs for n, fs in uses.items() if not any(m.startswith(n + ".") for m in uses)}


def used_attributes() -> set[str]:
    return {node.attr for _, tree in _trees() for node in ast.walk(tree) if isinstance(node, ast.Attribute)}


def used_option_keys() -> set[str]:
    """String keys the pack reads or writes in a dict whose name says it holds options."""
    def named(n):
        while isinstance(n, (ast.Attribute, ast.Subscript, ast.Call)):
            n = n.func if isinstance(n, ast.Call) else n.value
            if isinstance(n, ast.Attribute) and "option" in n.attr:
                return n.attr
        return n.id if isinstance(n, ast.Name) else ""

    keys = set()
    for _, tree in _trees():
        for node in ast.walk(tree):
            if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                    and isinstance(node.slice.value, str) and "option" in named(node.value):
                keys.add(node.slice.value)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) \
                    and node.func.attr in ("get", "setdefault", "pop") and node.args \
                    and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) \
                    and "option" in named(node.func.value):
                keys.add(node.args[0].value)
    return {k for k in keys if not k.startswith("invertedit")}   # the pack's own entries


def test_every_host_name_the_pack_uses_is_listed(host):
    surface = host.pack.hostkit.host_surface
    used = used_symbols()
    unlisted = {n: sorted(fs) for n, fs in used.items() if n not in surface.SYMBOLS}
    assert not unlisted, f"host names used but not in host_surface.SYMBOLS (check them in the host's changelog, then " \
                         f"list them): {unlisted}"
    stale = sorted(set(surface.SYMBOLS) - set(used))
    assert not stale, f"listed in host_surface.SYMBOLS but no longer used: {stale}"
    assert set(used_option_keys()) == set(surface.OPTION_KEYS), (sorted(used_option_keys()), surface.OPTION_KEYS)


def _host_objects(host, tiny):
    import comfy.samplers

    model, clip, vae = tiny("sd1")
    return {"comfy.model_patcher.ModelPatcher": model, "comfy.samplers.CFGGuider": comfy.samplers.CFGGuider(model),
            "comfy.model_base.BaseModel": model.model, "comfy.sd.CLIP": clip, "comfy.sd.VAE": vae}


def test_the_host_has_every_listed_name_and_member(host, tiny):
    """The installed host has every listed name, and its objects every listed member; and every member of
    those classes the pack reads by name is listed (torch's own module and tensor members aside)."""
    surface = host.pack.hostkit.host_surface
    assert surface.missing() == []
    objects = _host_objects(host, tiny)
    assert set(objects) == set(surface.MEMBERS)
    generic = set(dir(torch.nn.Module)) | set(vars(torch.nn.Module())) | set(dir(torch.Tensor)) | set(dir(object))
    used = used_attributes()
    for name, obj in objects.items():
        members = surface.MEMBERS[name]
        assert [m for m in members if not hasattr(obj, m)] == [], name
        own = {m for m in set(dir(obj)) | set(vars(obj)) if not m.startswith("__")} - generic
        assert sorted((own & used) - set(members)) == [], f"{name}: members read by name but not listed"


def test_a_missing_host_name_is_said(host, monkeypatch):
    surface = host.pack.hostkit.host_surface
    monkeypatch.setattr(surface, "SYMBOLS", (*surface.SYMBOLS, "comfy.samplers.CFGGuider.no_such_verb"))
    assert surface.missing() == ["comfy.samplers.CFGGuider.no_such_verb is missing"]


def _pack_classes(host):
    import sys
    prefix = host.pack.__name__
    for module in [m for name, m in sys.modules.items() if name.startswith(prefix) and m is not None]:
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == module.__name__:
                yield cls


def test_every_override_of_a_host_method_takes_keywords_it_does_not_read(host):
    """A newer host may pass a keyword more (``latent_shapes`` to ``inner_sample`` since late 2025): each
    method of a pack class that overrides a host class's method takes ``**kwargs``."""
    fixed = []
    for cls in _pack_classes(host):
        for base in cls.__mro__[1:]:
            if not base.__module__.split(".")[0] in HOST_ROOTS:
                continue
            for name, member in vars(cls).items():
                if name.startswith("__") or not inspect.isfunction(member) or not hasattr(base, name):
                    continue
                kinds = {p.kind for p in inspect.signature(member).parameters.values()}
                if inspect.Parameter.VAR_KEYWORD not in kinds:
                    fixed.append(f"{cls.__module__}.{cls.__qualname__}.{name} (overrides {base.__qualname__}.{name})")
    assert sorted(set(fixed)) == []


def test_every_wrapper_takes_keywords_it_does_not_read(host):
    """The same for the pack's wrappers (a function or a ``__call__`` whose first argument is the host's
    ``executor``): newer hosts hand OUTER_SAMPLE wrappers ``latent_shapes`` (ComfyUI issues #10562, #14180)."""
    import sys

    prefix, fixed, seen = host.pack.__name__, [], 0
    for module in [m for name, m in list(sys.modules.items()) if name.startswith(prefix) and m is not None]:
        for _, obj in inspect.getmembers(module):
            func = obj.__call__ if inspect.isclass(obj) and "__call__" in vars(obj) else obj
            if not inspect.isfunction(func) or getattr(obj, "__module__", None) != module.__name__:
                continue
            params = list(inspect.signature(func).parameters.values())
            names = [p.name for p in params if p.name != "self"]
            if names[:1] != ["executor"]:
                continue
            seen += 1
            if inspect.Parameter.VAR_KEYWORD not in {p.kind for p in params}:
                fixed.append(f"{module.__name__}.{getattr(obj, '__qualname__', obj)}")
    assert seen >= 8, f"only {seen} wrappers found: the scan no longer finds them"
    assert sorted(set(fixed)) == []


def test_flow_techniques_refuse_a_config_they_were_not_tested_on(host):
    """A model on Flux.1's transformer class under another host config (Flux.2's case) is refused by name."""
    import comfy.supported_models

    model = host.pack.demo.tiny_flow_models.build_tiny_flow_unet("flux-dev")
    model.model.model_config.__class__ = type("Flux2", (comfy.supported_models.Flux,), {})
    with pytest.raises(host.pack.hostkit.errors.NodeInputError,
                       match=r"FlowEdit: input 'model' is Flux2 \(Flux\), a model this node was not tested on; it "
                             r"edits with Flux.1 dev and schnell, SD3/SD3.5 and Qwen-Image"):
        host.pack.hostkit.sampling.check_flow_family(model, "FlowEdit")
