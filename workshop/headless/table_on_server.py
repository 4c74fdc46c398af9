"""The bad-input table (``tests/host/test_bad_inputs.py``: CASES) through a real ComfyUI server.

``python -m workshop.headless.table_on_server`` (from the repository root) prints how many of the
table's cases a real server refuses with the message the table expects when they arrive as an
API-format graph (POST /prompt), as a user's API client or the frontend would send them.

How:

1. A real server: ``main.py --cpu`` on a free port with a fresh ``--base-directory`` and this
   pack linked into its ``custom_nodes``, started as ``tests/browser/conftest.py`` starts it
   (its launcher and helpers are imported from there, so both start the same server).
2. This process boots the same host in-process (``boot``) on the same base directory, so the
   files a case writes into ``input/`` (malformed inversion files, ...) are the files the server
   reads.
3. Each case runs in-process first, exactly as the test runs it, but with a recording ``call``
   (and ``encode``) patched into the table modules and ``workshop.headless.calls``: every node call
   is recorded as (class_type, inputs, outputs, error). The ``Kit`` is built by the table's own
   ``kit`` fixture function, given a ``tiny`` that calls the Demo Model node
   (``InvertEditDemoModel``, family sd1, seed 0 / 1: the models ``tiny()`` builds), so the kit's
   models, prompts and inversions are node outputs too.
4. The call that raised (the case's last call) and its ancestors become the graph. An input is:
   a literal (str/int/float/bool/None; NaN and infinity go as JSON's ``NaN``/``Infinity``, which
   the server's ``json.loads`` reads; a None given to an optional input is left out, as an
   unconnected input is); a link ``[node, index]`` where the value is an output of an earlier
   recorded call; a LATENT ``{"samples": float32 tensor}`` made in Python (the kit's source,
   a latent with a NaN, a pair) becomes a ``.latent`` file in ``input/`` and a stock LoadLatent;
   a constant MASK becomes a stock SolidMask; an INVERSION record made in Python
   (``dataclasses.replace``) becomes a file and a Load Inversion node, where Load Inversion
   reads that record back; two recorded prompts concatenated (``pos + neg``) become a stock
   Conditioning (Combine); a list of literals goes as ``{"__value__": [...]}``; a required input
   the case left to the function's default is sent with that default, as a widget sends its
   value. Anything else (a model with a wrapper, a conditioning made by hand, an error raised
   outside any node call) makes the case "not expressible", with the reason.
5. ComfyUI executes only what leads to an output node: unless the raising node is one, a stock
   Preview Any (input type ``*``, so any output) consumes its first output.
6. POST /prompt; a 400 is a refusal at validation (its messages and details are searched), else
   /history/<id> is polled and an ``execution_error``'s ``exception_message`` is searched, with
   the case's regex (``re.search``, as ``pytest.raises(match=)``). A case after which the server
   executes nothing more (its prompt worker thread died, or it exited) is counted as such, and
   the server is started again on the same folders for the cases left.
7. A valid text-to-image graph of stock nodes (on the Demo Model, as no checkpoint is here) runs
   before the first case and after the last: its latent and picture must be bit-identical, and
   its KSampler must have run again (not been served from the cache), so nothing the cases did
   leaked into the server.

Limits: a case is translated from what it did in-process, so a node the server would reach by
another path is not tried; values made in Python that no stock node reproduces are not sent;
the server keeps node outputs between prompts (its classic cache), so a node whose inputs did
not change is not re-run: its earlier output is used, as in a user's session. Not part of the
pytest suite (about a minute on 2 cores); ``-k`` runs the cases whose id contains a text. Exit
status 1 when a case was refused with another message, ran, or stopped the server, or the
text-to-image graph changed.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import dataclasses
import hashlib
import importlib
import importlib.util
import inspect
import json
import logging
import re
import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterator

from .host import find_host, host_missing_reason

REPO = Path(__file__).resolve().parents[2]
TABLES = REPO / "tests" / "host"
MAIN_TABLE = "test_bad_inputs"
BROWSER_CONFTEST = REPO / "tests" / "browser" / "conftest.py"
T2I_PROMPT = "a red circle on a blue background"
LITERALS = (bool, int, float, str)

EXPECTED, OTHER, RAN, BROKE, NOT_EXPRESSIBLE = "refused as expected", "refused with another message", \
    "ran without error", "stopped the server's prompt worker", "not expressible"


# the host's own validation refusals (execution.validate_inputs), before any node runs
HOST_CHECKS = {"value_smaller_than_min": "the host's min/max check",
               "value_bigger_than_max": "the host's min/max check",
               "return_type_mismatch": "the host's link type check", "value_not_in_list": "the host's combo check",
               "required_input_missing": "the host's required-input check",
               "invalid_input_type": "the host's widget type conversion"}


class NotExpressible(Exception):
    """The case cannot be sent as an API-format graph (the reason is the message)."""


class ServerBroken(Exception):
    """The server stopped executing prompts (its prompt worker thread died, or it exited)."""


# -------------------------------------------------------------------------------- recording

@dataclasses.dataclass
class Call:
    index: int
    class_type: str
    inputs: dict[str, Any]
    outputs: tuple | None = None
    error: BaseException | None = None


class Recorder:
    """A ``call``/``encode`` pair that runs the node as ``workshop.headless.calls.call`` does and
    records it. Outputs are kept alive, so ``id()`` of a recorded output stays unique."""

    def __init__(self, call: Callable[..., tuple]):
        self._call = call
        self.calls: list[Call] = []
        self.producers: dict[int, tuple[int, int]] = {}   # id(output) -> (call index, output index), first wins

    def call(self, host, class_type: str, **inputs) -> tuple:
        record = Call(len(self.calls), class_type, dict(inputs))
        self.calls.append(record)
        try:
            outputs = self._call(host, class_type, **inputs)
        except BaseException as e:
            record.error = e
            raise
        record.outputs = outputs
        for i, value in enumerate(outputs):
            if value is not None and not isinstance(value, LITERALS):
                self.producers.setdefault(id(value), (record.index, i))
        return outputs

    def encode(self, host, clip, text: str) -> list:
        return self.call(host, "CLIPTextEncode", clip=clip, text=text)[0]

    @contextlib.contextmanager
    def patched(self, modules: list[ModuleType]) -> Iterator[None]:
        """``call`` and ``encode`` replaced in ``modules``' globals (where they are the originals)."""
        from . import calls

        originals = {"call": calls.call, "encode": calls.encode}
        replaced = []
        for module in modules:
            for name, original in originals.items():
                if getattr(module, name, None) is original:
                    setattr(module, name, getattr(self, name))
                    replaced.append((module, name, original))
        try:
            yield
        finally:
            for module, name, original in replaced:
                setattr(module, name, original)


# -------------------------------------------------------------------------------- the graph

class InputFiles:
    """Files in the server's input folder standing for values made in Python (named by content)."""

    def __init__(self, input_dir: Path, host):
        self.input_dir = input_dir
        self.host = host

    def _write(self, suffix: str, data: bytes) -> Path:
        path = self.input_dir / f"table_on_server_{hashlib.sha256(data).hexdigest()[:16]}{suffix}"
        if not path.is_file():
            path.write_bytes(data)
        return path

    def latent(self, samples) -> str:
        import safetensors.torch
        import torch

        if samples.dtype != torch.float32 or samples.device.type != "cpu":
            raise NotExpressible(f"a {samples.dtype} latent, which LoadLatent would read back as float32")
        data = safetensors.torch.save({"latent_tensor": samples.detach().contiguous().clone(),
                                       "latent_format_version_0": torch.tensor([])})
        return self._write(".latent", data).name

    def inversion(self, record) -> str:
        import safetensors.torch

        tensors, meta = record.to_state()
        path = self._write(".safetensors", safetensors.torch.save(tensors, metadata=meta))
        try:
            self.host.pack.hostkit.inversion_files.load_inversion(str(path))
        except Exception as e:
            raise NotExpressible(f"an INVERSION made in Python ({type(record).__name__} {record.method!r}), which Load "
                                 f"Inversion refuses as a file: {first_line(e)}") from None
        return path.name


class GraphBuilder:
    """The API-format graph of one recorded call and its ancestors."""

    def __init__(self, recorder: Recorder, files: InputFiles, node_classes: dict):
        self.recorder = recorder
        self.files = files
        self.classes = node_classes
        self.prompt: dict[str, dict] = {}
        self._of_call: dict[int, str] = {}
        self._of_key: dict[tuple, str] = {}

    def _add(self, class_type: str, inputs: dict, key: tuple | None = None) -> str:
        if key is not None and key in self._of_key:
            return self._of_key[key]
        node_id = str(len(self.prompt) + 1)
        self.prompt[node_id] = {"class_type": class_type, "inputs": inputs}
        if key is not None:
            self._of_key[key] = node_id
        return node_id

    def node_of_call(self, index: int) -> str:
        if index in self._of_call:
            return self._of_call[index]
        call = self.recorder.calls[index]
        cls = self.classes[call.class_type]
        declared = cls.INPUT_TYPES()
        optional = set(declared.get("optional", {}))
        inputs = {}
        for name, value in call.inputs.items():
            if value is None and name in optional:
                continue   # an unconnected optional input
            inputs[name] = self.value(call.class_type, name, value)
        defaults = python_defaults(cls)
        for name in declared.get("required", {}):   # left to the function's default in-process: a widget
            if name not in inputs and isinstance(defaults.get(name), LITERALS):   # sends its value
                inputs[name] = defaults[name]
        self._of_call[index] = node_id = self._add(call.class_type, inputs)
        return node_id

    def value(self, class_type: str, name: str, value: Any) -> Any:
        import torch

        if value is None or isinstance(value, LITERALS):
            return value
        producer = self.recorder.producers.get(id(value))
        if producer is not None:
            return [self.node_of_call(producer[0]), producer[1]]
        if isinstance(value, dict) and set(value) == {"samples"} and isinstance(value["samples"], torch.Tensor):
            file = self.files.latent(value["samples"])
            return [self._add("LoadLatent", {"latent": file}, ("LoadLatent", file)), 0]
        if isinstance(value, torch.Tensor) and value.dim() == 3 and value.shape[0] == 1 and value.numel() \
                and value.dtype == torch.float32 and bool((value == value.flatten()[0]).all()) \
                and 0.0 <= float(value.flatten()[0]) <= 1.0:
            inputs = {"value": float(value.flatten()[0]), "width": value.shape[2], "height": value.shape[1]}
            return [self._add("SolidMask", inputs, ("SolidMask",) + tuple(inputs.values())), 0]
        if hasattr(value, "to_state") and hasattr(value, "method"):
            file = self.files.inversion(value)
            return [self._add("InvertEditLoadInversion", {"inversion": file}, ("LoadInversion", file)), 0]
        if isinstance(value, (list, tuple)) and all(v is None or isinstance(v, LITERALS) for v in value):
            return {"__value__": list(value)}   # the API's escape for a list value (a bare pair is a link)
        if isinstance(value, list):
            halves = self._combined(value)
            if halves is not None:
                links = {"conditioning_1": [self.node_of_call(halves[0][0]), halves[0][1]],
                         "conditioning_2": [self.node_of_call(halves[1][0]), halves[1][1]]}
                return [self._add("ConditioningCombine", links), 0]
        raise NotExpressible(f"{class_type} input '{name}' is {describe(value)} made in Python, not by a node")

    def _combined(self, value: list) -> tuple[tuple[int, int], tuple[int, int]] | None:
        """Two recorded CONDITIONING outputs whose concatenation ``value`` is (element by element), or None:
        what the stock Conditioning (Combine) makes of them."""
        def conditioning(first: int, length: int) -> tuple[int, int] | None:
            for call in self.recorder.calls:
                for i, out in enumerate(call.outputs or ()):
                    if isinstance(out, list) and len(out) == length and all(a is b for a, b in
                                                                            zip(out, value[first:first + length])) \
                            and self.classes[call.class_type].RETURN_TYPES[i] == "CONDITIONING":
                        return self.recorder.producers.get(id(out))
            return None

        for split in range(1, len(value)):
            a, b = conditioning(0, split), conditioning(split, len(value) - split)
            if a is not None and b is not None:
                return a, b
        return None

    def for_case(self, target: int, output_node: str | None) -> dict[str, dict]:
        """The graph of recorded call ``target``, with ``output_node`` on its first output unless it is one."""
        node_id = self.node_of_call(target)
        cls = self.classes[self.recorder.calls[target].class_type]
        if not getattr(cls, "OUTPUT_NODE", False):
            if not cls.RETURN_TYPES:
                raise NotExpressible(f"{self.recorder.calls[target].class_type} has no output and is no output node")
            if output_node is None:
                raise NotExpressible("the host has no output node taking any type (Preview Any)")
            self._add(output_node, {"source": [node_id, 0]})
        return self.prompt


def python_defaults(cls) -> dict[str, Any]:
    """The defaults of a node function's parameters (V3: ``execute``; V1: its FUNCTION)."""
    function = getattr(cls, "execute", None) if hasattr(cls, "define_schema") else getattr(cls, cls.FUNCTION, None)
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def describe(value: Any) -> str:
    import torch

    if isinstance(value, torch.Tensor):
        return f"a tensor {tuple(value.shape)}"
    if isinstance(value, list) and value and isinstance(value[0], (list, tuple)) and value[0] \
            and isinstance(value[0][0], torch.Tensor):
        return f"a CONDITIONING {tuple(value[0][0].shape)}"
    if isinstance(value, dict):
        return f"a dict with keys {sorted(value)}"
    return f"a {type(value).__name__}"


def first_line(error: BaseException | str, limit: int = 300) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text if len(text) <= limit else text[:limit] + "..."


# -------------------------------------------------------------------------------- the server

def _browser_conftest() -> ModuleType:
    """tests/browser/conftest.py, for its server launcher and helpers (imported by path)."""
    spec = importlib.util.spec_from_file_location("invertedit_browser_conftest", BROWSER_CONFTEST)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # its dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def start_server(base: Path, host: Path, prepare: bool = True):
    """The real server, as tests/browser/conftest.py's ``comfy_server`` starts it; returns its ``Server``.
    ``prepare=False``: again on a base directory prepared before (after a server broke)."""
    conftest = _browser_conftest()
    if prepare:
        conftest._prepare_base(base, host)
    server = conftest.launch(base, host, log_mode="ab")
    server.stop = lambda: conftest._stop(server.process)
    return server


@dataclasses.dataclass
class Reply:
    stage: str                # "validation" (POST /prompt answered 400), "execution" or "ran"
    texts: list[str]          # the messages to search
    history: dict | None = None
    exception_type: str = ""
    kinds: tuple[str, ...] = ()   # a validation refusal's error types (value_bigger_than_max, ...)


def _worker_died(server, offset: int) -> str | None:
    """The last line of a traceback that ended the server's prompt worker thread since log ``offset``, or None."""
    with open(server.log, "rb") as f:
        f.seek(offset)
        text = f.read().decode("utf-8", errors="replace")
    if "Exception in thread" not in text or "prompt_worker" not in text:
        return None
    lines = [line for line in text.split("Exception in thread", 1)[1].splitlines() if line.strip()]
    return lines[-1] if lines else "(no traceback)"


def submit(server, prompt: dict, timeout_s: float) -> Reply:
    """POST the graph; a 400 is a validation refusal, else wait for its history entry. Raises
    ServerBroken when the server stops executing prompts."""
    offset = server.log.stat().st_size
    body = json.dumps({"prompt": prompt, "client_id": "table-on-server"}).encode()   # NaN/Infinity as JSON tokens
    request = urllib.request.Request(server.url + "/prompt", data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            prompt_id = json.loads(response.read())["prompt_id"]
    except urllib.error.HTTPError as e:
        if e.code != 400:
            raise
        answer = json.loads(e.read() or b"{}")
        top = answer.get("error", {})
        texts = [f"{top.get('message', '')}: {top.get('details', '')}" if top.get("details")
                 else top.get("message", "")]
        kinds = []
        for node_id, node in sorted(answer.get("node_errors", {}).items()):
            for error in node.get("errors", []):
                texts.append(f"{error.get('message', '')}: {error.get('details', '')} (node {node_id}, "
                             f"{node.get('class_type')})")
                kinds.append(error.get("type", "?"))
        return Reply("validation", texts, kinds=tuple(kinds) or (top.get("type", "?"),))
    deadline = time.monotonic() + timeout_s
    while True:
        entry = server.get(f"/history/{prompt_id}").get(prompt_id)
        if entry is not None and entry.get("status", {}).get("completed") is not None:
            break
        if server.process.poll() is not None:
            raise ServerBroken(f"the server exited (status {server.process.returncode}); its log ends:\n"
                               f"{server.tail()}")
        died = _worker_died(server, offset)
        if died is not None:
            raise ServerBroken(f"the server's prompt worker thread died: {died}")
        if time.monotonic() > deadline:
            raise ServerBroken(f"prompt {prompt_id} did not finish within {timeout_s}s")
        time.sleep(0.05)
    for event, data in entry["status"].get("messages", []):
        if event == "execution_error":
            return Reply("execution", [f"{data.get('exception_message', '')}"], entry,
                         f"{data.get('exception_type')} in node {data.get('node_id')} ({data.get('node_type')})")
        if event == "execution_interrupted":
            return Reply("execution", ["(interrupted)"], entry)
    return Reply("ran", [], entry)


# -------------------------------------------------------------------------------- stock text-to-image

def t2i_graph(prefix: str) -> dict:
    """A valid text-to-image graph: stock nodes on the Demo Model (no checkpoint here)."""
    return {
        "1": {"class_type": "InvertEditDemoModel", "inputs": {"family": "sd1", "seed": 0}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": T2I_PROMPT}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": ""}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "5": {"class_type": "KSampler", "inputs": {"model": ["1", 0], "seed": 0, "steps": 8, "cfg": 7.5,
                                                   "sampler_name": "euler", "scheduler": "normal", "positive": ["2", 0],
                                                   "negative": ["3", 0], "latent_image": ["4", 0], "denoise": 1.0}},
        "6": {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}},
        "7": {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": prefix}},
        "8": {"class_type": "SaveLatent", "inputs": {"samples": ["5", 0], "filename_prefix": prefix}},
    }


@dataclasses.dataclass
class T2IRun:
    latent: Any
    pixels: bytes
    cached: list[str]


def run_t2i(server, prefix: str, timeout_s: float) -> T2IRun:
    import numpy as np
    import safetensors.torch
    from PIL import Image

    reply = submit(server, t2i_graph(prefix), timeout_s)
    if reply.stage != "ran":
        raise RuntimeError(f"the stock text-to-image graph failed at {reply.stage}: {reply.texts}")
    outputs = reply.history["outputs"]

    def path(item: dict) -> Path:
        return server.output_dir / item.get("subfolder", "") / item["filename"]

    latent = safetensors.torch.load_file(str(path(outputs["8"]["latents"][0])))["latent_tensor"]
    pixels = np.asarray(Image.open(path(outputs["7"]["images"][0]))).tobytes()
    cached = next((data["nodes"] for event, data in reply.history["status"]["messages"] if event == "execution_cached"),
                  [])
    return T2IRun(latent, pixels, cached)


# -------------------------------------------------------------------------------- the table

@dataclasses.dataclass
class Case:
    table: str
    id: str
    run: Callable
    pattern: str


@dataclasses.dataclass
class Outcome:
    case: Case
    category: str
    stage: str = ""              # validation / execution, for refusals
    detail: str = ""             # the server's message, or why not expressible
    in_process: str = ""         # "" when the in-process run refused with the expected message
    nodes: int = 0
    kinds: tuple[str, ...] = ()  # the host's validation error types, for a refusal at validation


def load_tables() -> tuple[list[ModuleType], list[Case]]:
    """The table modules (test_bad_inputs first, then test_bad_inputs_*) and their cases, ids unique (first wins)."""
    if str(TABLES) not in sys.path:
        sys.path.insert(0, str(TABLES))
    names = [MAIN_TABLE] + sorted(p.stem for p in TABLES.glob(f"{MAIN_TABLE}_*.py"))
    modules, cases, seen = [], [], set()
    for name in names:
        module = importlib.import_module(name)
        modules.append(module)
        for case_id, run, pattern in getattr(module, "CASES", []):
            if case_id not in seen:
                seen.add(case_id)
                cases.append(Case(name, case_id, run, pattern))
    return modules, cases


def build_kit(main_table: ModuleType, host, recorder: Recorder):
    """The table's ``kit`` fixture function, run with a ``tiny`` that calls the Demo Model node."""
    fixture = main_table.kit
    unwrap = getattr(fixture, "_get_wrapped_function", None)   # pytest 8.4+: FixtureFunctionDefinition
    make = unwrap() if unwrap else getattr(fixture, "__wrapped__", fixture)
    models: dict[tuple[str, int], tuple] = {}

    def tiny(family: str = "sd1", seed: int = 0) -> tuple:
        if (family, seed) not in models:
            models[(family, seed)] = recorder.call(host, "InvertEditDemoModel", family=family, seed=seed)
        return models[(family, seed)]

    class Folders:   # tmp_path_factory's one verb the kit uses
        @staticmethod
        def mktemp(name: str) -> Path:
            return Path(tempfile.mkdtemp(prefix=f"{name}-"))

    def skip_loudly(reason: str):
        raise NotOnTheServer(reason)

    # The suite's reference_copy (tests/conftest.py, imported by path): ComfyUI-GGUF for the kit's GGUF cases
    spec = importlib.util.spec_from_file_location("invertedit_tests_conftest", REPO / "tests" / "conftest.py")
    tests_conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests_conftest)
    fixture = tests_conftest.reference_copy
    unwrap_copy = getattr(fixture, "_get_wrapped_function", None)
    reference_copy = (unwrap_copy() if unwrap_copy else getattr(fixture, "__wrapped__", fixture))()
    return make(host, tiny, reference_copy, Folders(), skip_loudly)


class NotOnTheServer(RuntimeError):
    """A case the kit cannot build in this tool (what it needs, ComfyUI-GGUF, is absent)."""


def run_case(case: Case, kit, recorder: Recorder, builder_for: Callable[[], GraphBuilder], server,
             output_node: str | None, timeout_s: float) -> Outcome:
    import torch

    start = len(recorder.calls)
    error: BaseException | None = None
    with torch.no_grad():   # as tests/host/conftest.py runs the host tests
        try:
            case.run(kit)
        except NotOnTheServer as e:   # the kit cannot build what the case needs here (ComfyUI-GGUF is absent)
            return Outcome(case, NOT_EXPRESSIBLE, detail=f"not built in this tool: {first_line(e)}",
                           in_process=f"not run: {first_line(e)}")
        except Exception as e:
            error = e
    in_process = ""
    if error is None:
        in_process = "ran without error in-process"
    elif not isinstance(error, ValueError) or not re.search(case.pattern, str(error)):
        in_process = f"in-process: {type(error).__name__}: {first_line(error)}"
    mine = recorder.calls[start:]
    try:
        if not mine:
            raise NotExpressible("the case calls no node")
        if error is not None and mine[-1].error is None:
            raise NotExpressible(f"it raised outside any node call ({type(error).__name__}: {first_line(error)})")
        builder = builder_for()
        prompt = builder.for_case(mine[-1].index, output_node)
    except NotExpressible as e:
        return Outcome(case, NOT_EXPRESSIBLE, detail=str(e), in_process=in_process)
    try:
        reply = submit(server, prompt, timeout_s)
    except ServerBroken as e:
        return Outcome(case, BROKE, "execution", str(e), in_process, len(prompt))
    if reply.stage == "ran":
        return Outcome(case, RAN, in_process=in_process, nodes=len(prompt))
    if any(re.search(case.pattern, text) for text in reply.texts):
        return Outcome(case, EXPECTED, reply.stage, in_process=in_process, nodes=len(prompt))
    detail = " | ".join(reply.texts) + (f" [{reply.exception_type}]" if reply.exception_type else "")
    return Outcome(case, OTHER, reply.stage, detail, in_process, len(prompt), reply.kinds)


# -------------------------------------------------------------------------------- report

def report(outcomes: list[Outcome], tables: dict[str, int], t2i: list[str], seconds: float,
           comfy_version: str) -> None:
    count = collections.Counter(o.category for o in outcomes)
    stages = collections.Counter((o.category, o.stage) for o in outcomes)
    expressible = len(outcomes) - count[NOT_EXPRESSIBLE]
    print()
    print(f"Bad-input table through a real ComfyUI {comfy_version} server (--cpu): {len(outcomes)} cases "
          f"({', '.join(f'{name} {n}' for name, n in tables.items())})")
    width = 36
    print(f"  {'expressible as a graph':<{width}}{expressible:>5}")
    for category in (EXPECTED, OTHER, RAN, BROKE):
        split = ", ".join(f"at {stage} {stages[(category, stage)]}" for stage in ("validation", "execution")
                          if stages[(category, stage)] and category in (EXPECTED, OTHER))
        print(f"    {category:<{width - 2}}{count[category]:>5}" + (f"  ({split})" if split else ""))
        if category == OTHER:   # which of the host's own validation checks refused first
            kinds = collections.Counter(HOST_CHECKS.get(kind, kind) for o in outcomes if o.category == OTHER
                                        for kind in sorted(set(o.kinds)))
            for kind, n in kinds.most_common():
                print(f"      {'by ' + kind:<{width - 4}}{n:>5}")
    print(f"  {NOT_EXPRESSIBLE:<{width}}{count[NOT_EXPRESSIBLE]:>5}")
    odd = [o for o in outcomes if o.in_process]
    print(f"In-process (as the tests run them): {len(outcomes) - len(odd)} of {len(outcomes)} refused with the "
          f"expected message")
    print("Stock text-to-image graph:")
    for line in t2i:
        print(f"  {line}")
    for category in (OTHER, RAN, BROKE):
        listed = [o for o in outcomes if o.category == category]
        if listed:
            print(f"\n{category[0].upper() + category[1:]} ({len(listed)}):")
            for o in listed:
                print(f"- {o.case.id} ({o.case.table}, {o.nodes} nodes){': at ' + o.stage if o.stage else ''}")
                print(f"    expected: {o.case.pattern[:200]}")
                if o.detail:
                    print(f"    server:   {o.detail[:600]}")
    listed = [o for o in outcomes if o.category == NOT_EXPRESSIBLE]
    if listed:
        print(f"\nNot expressible as a graph ({len(listed)}):")
        for o in listed:
            print(f"- {o.case.id}: {o.detail}")
    if odd:
        print(f"\nCases whose in-process run did not refuse as the table expects ({len(odd)}):")
        for o in odd:
            print(f"- {o.case.id}: {o.in_process}")
    print(f"\nRuntime: {seconds:.0f} s")


def compare_t2i(label: str, first: T2IRun, later: T2IRun, cache_matters: bool) -> tuple[str, bool]:
    """One line on ``later`` against ``first``, and whether they are bit-identical."""
    import torch

    same = torch.equal(first.latent, later.latent) and first.pixels == later.pixels
    cached = ", ".join(t2i_graph("")[n]["class_type"] for n in later.cached) or "none"
    line = f"{label}: " + ("bit-identical to the first run (latent and picture)" if same else
                           "DIFFERENT from the first run")
    if cache_matters:
        line += (", its KSampler ran again" if "5" not in later.cached else
                 ", but its KSampler came from the cache, so this checked nothing") + f" (cached: {cached})"
    return line, same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-k", dest="only", default="", help="run only the cases whose id contains this text")
    parser.add_argument("--timeout", type=float, default=300, help="seconds a graph may run (default 300)")
    parser.add_argument("--keep", action="store_true", help="keep the server's base directory (printed)")
    args = parser.parse_args(argv)
    began = time.monotonic()

    host_path = find_host()
    if host_path is None:
        print("ComfyUI not found: " + host_missing_reason(), file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(1)   # as the tests (tests/conftest.py), and the server (OMP_NUM_THREADS=1)
    base = Path(tempfile.mkdtemp(prefix="table_on_server_"))
    server = None
    try:
        server = start_server(base, host_path)
        print(f"server {server.url}, base {base} (log: {server.log}), started in {time.monotonic() - began:.0f} s",
              flush=True)
        from . import calls
        from .boot import boot

        host = boot(host_path, base_dir=base)   # the same input/output folders as the server's
        logging.getLogger().setLevel(logging.ERROR)   # the cases' stated warnings are not this report's business
        modules, cases = load_tables()
        cases = [c for c in cases if args.only in c.id]
        recorder = Recorder(calls.call)
        classes = host.nodes.NODE_CLASS_MAPPINGS
        output_node = "PreviewAny" if "PreviewAny" in classes else None
        files = InputFiles(base / "input", host)
        outcomes: list[Outcome] = []
        t2i: list[str] = []
        identical = True
        with recorder.patched(modules + [calls]):
            kit = build_kit(modules[0], host, recorder)
            before = run_t2i(server, "table_on_server/t2i_before", args.timeout)
            for i, case in enumerate(cases, 1):
                outcome = run_case(case, kit, recorder, lambda: GraphBuilder(recorder, files, classes), server,
                                   output_node, args.timeout)
                outcomes.append(outcome)
                flag = "" if outcome.category == EXPECTED else f"  <- {outcome.category}"
                print(f"[{i}/{len(cases)}] {case.id}{flag}", flush=True)
                if outcome.category == BROKE:   # a fresh server on the same folders for the cases left
                    server.stop()
                    server = start_server(base, host_path, prepare=False)
                    line, same = compare_t2i(f"on the server restarted after {case.id}", before,
                                             run_t2i(server, f"table_on_server/t2i_restart_{i}", args.timeout), False)
                    t2i.append(line)
                    identical &= same
            after = run_t2i(server, "table_on_server/t2i_after", args.timeout)
        line, same = compare_t2i("after the last case", before, after, True)
        t2i.append(line)
        identical &= same
        version = getattr(importlib.import_module("comfyui_version"), "__version__", "?")
        report(outcomes, dict(collections.Counter(c.table for c in cases)), t2i, time.monotonic() - began, version)
        return 1 if any(o.category in (OTHER, RAN, BROKE) for o in outcomes) or not identical else 0
    finally:
        if server is not None:
            server.stop()
        if args.keep:
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
