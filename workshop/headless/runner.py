"""Running canvas workflows headlessly, in this process, through ComfyUI's own executor.

``run_workflow(path, out_dir)`` loads a canvas workflow (the file users open in the editor),
converts it to the API format with the node definitions of the booted host
(:mod:`headless.canvas`; subgraphs expanded as the frontend expands them, :mod:`headless.subgraphs`,
so an inner node's id is "<subgraph node>:<id>"), optionally swaps in the user's image and checkpoint (or, for a
workflow built on Load Checkpoint, the pack's built-in model), validates and
executes it with ``execution.validate_prompt`` / ``execution.PromptExecutor`` exactly as the
server's prompt worker does, and copies the images that the workflow saved into ``out_dir``.

The host is booted on first use (:func:`headless.boot.boot`, CPU unless told otherwise);
call ``boot(...)`` yourself first to choose the host, the device or the folders.
"""
from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import shutil
import tempfile
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from invertedit.demo.worlds import DEFAULT_WORLD, WORLD_1, WORLD_FLOW, WORLDS

from .boot import Host, boot
from .canvas import canvas_to_api
from .host import PACK_DIR

__all__ = [
    "WorkflowError",
    "node_info",
    "object_info",
    "load_workflow",
    "prepare_prompt",
    "execute",
    "run_workflow",
    "saved_files",
    "saved_images",
    "pictures",
    "Picture",
    "SAMPLE_IMAGE",
    "BUILTIN_MODELS",
    "DEMO_MODEL",
    "TOY_MODEL",
    "BUILTIN_SWAPS",
    "Builtin",
]


def _sample(world: str) -> Path:
    """The sample image bundled in assets/ for toy world ``world``."""
    return PACK_DIR / "assets" / WORLDS[world].sample


SAMPLE_IMAGE = _sample(DEFAULT_WORLD)   # the default toy world's (two objects, 512 px)
BUNDLED = {p.name: p for p in sorted((PACK_DIR / "assets").glob("*")) if p.is_file()}
DEMO_MODEL = "InvertEditDemoModel"  # the pack's random-weight tiny model loader (MODEL, CLIP, VAE)
TOY_MODEL = "InvertEditToyModel"    # the pack's trained toy-world model loader (MODEL, CLIP, VAE)
BUILTIN_MODELS = (TOY_MODEL, DEMO_MODEL)
CHECKPOINT_LOADER = "CheckpointLoaderSimple"  # the stock loader: MODEL, CLIP, VAE in the same slots
UNET_LOADER = "UNETLoader"                    # the stock Load Diffusion Model (MODEL): a family shipped as separate files
#: The stock loaders a template for the user's own model starts from, and which of a built-in model's outputs
#: (MODEL 0, CLIP 1, VAE 2) each one's outputs are: Load Checkpoint all three; a family shipped as separate files
#: (Qwen-Image, as ComfyUI's own examples load it) Load Diffusion Model, Load CLIP and Load VAE one each
MODEL_LOADERS = {CHECKPOINT_LOADER: (0, 1, 2), UNET_LOADER: (0,), "CLIPLoader": (1,), "DualCLIPLoader": (1,),
                 "TripleCLIPLoader": (1,), "VAELoader": (2,)}
IMAGE_ONLY_LOADER = "ImageOnlyCheckpointLoader"   # the stock Image Only Checkpoint Loader: MODEL, CLIP_VISION, VAE
DEMO_3D_MODEL = "InvertEditDemo3DModel"        # the pack's tiny random image-to-views / 3D models (same slots)
#: with ``builtin``, every Image Only Checkpoint Loader becomes the Demo 3D Model of the family its file name starts
#: with (same node id and output slots): SV3D's orbit views (sv3d_u / sv3d_p), Hunyuan3D-2's multi-view DiT
IMAGE_ONLY_SWAPS = {"sv3d": {"family": "sv3d", "seed": 0}, "hunyuan3d": {"family": "hunyuan3d2", "seed": 0}}
IMAGE_SCALE = "ImageScale"                    # the stock Upscale Image (width, height)
TOTAL_PIXELS = "ImageScaleToTotalPixels"      # the stock Scale Image to Total Pixels: the checkpoint workflows' size
FLUX_SHIFT = "ModelSamplingFlux"              # the stock Flux shift, set at the image's size


class Builtin(NamedTuple):
    """A pack model that can stand in for Load Checkpoint (same MODEL, CLIP, VAE slots): its node
    class, widget values and title in the prompt, the image side it makes (Upscale Image is set
    to it) and the bundled image it knows (every LoadImage loads it unless an image is given)."""
    class_type: str
    widgets: dict
    title: str
    size: int
    image: Path


BUILTIN_SWAPS = {   # ``builtin=``; the demo models take any size and draw noise: the small one is quickest
    "toy": Builtin(TOY_MODEL, {"world": DEFAULT_WORLD}, "Toy World Model (in place of Load Checkpoint)",
                   WORLDS[DEFAULT_WORLD].size, SAMPLE_IMAGE),
    "toy-one-object": Builtin(TOY_MODEL, {"world": WORLD_1}, "Toy World Model, one object (in place of Load Checkpoint)",
                              WORLDS[WORLD_1].size, _sample(WORLD_1)),
    # the toy flow world's guidance-distilled Flux-architecture DiT: runs the Flux workflows as Flux.1 dev
    "toy-flow": Builtin(TOY_MODEL, {"world": WORLD_FLOW}, "Toy World Model, flow DiT (in place of Load Checkpoint)",
                        WORLDS[WORLD_FLOW].size, _sample(WORLD_FLOW)),
    **{f"demo-{family}": Builtin(DEMO_MODEL, {"family": family, "seed": 0},
                                 f"Demo Model {family} (in place of Load Checkpoint)", WORLDS[WORLD_1].size,
                                 _sample(WORLD_1))
       for family in ("sd1", "sd2-v", "sdxl", "flux-dev", "flux-schnell", "sd3", "qwen-image", "wan21")},
}

log = logging.getLogger("invertedit.runner")


class WorkflowError(RuntimeError):
    """A workflow that could not be prepared, validated or executed; the message says why."""


def _host(host: Host | None) -> Host:
    return host if host is not None else boot()


# ----------------------------------------------------------------------------- node definitions

def node_info(class_type: str, host: Host | None = None) -> dict[str, Any]:
    """The ``/object_info`` entry of a node class, as the server builds it (server.py's
    ``node_info``, which is a closure inside the server's routes and cannot be called without
    a running server). Raises KeyError for an unknown class."""
    h = _host(host)
    nodes = h.nodes
    cls = nodes.NODE_CLASS_MAPPINGS[class_type]
    if hasattr(cls, "GET_NODE_INFO_V1"):  # V3 nodes (comfy_api ComfyNode) describe themselves
        return cls.GET_NODE_INFO_V1()
    types = cls.INPUT_TYPES()
    info: dict[str, Any] = {
        "input": types,
        "input_order": {key: list(value.keys()) for key, value in types.items()},
        "output": cls.RETURN_TYPES,
        "output_is_list": getattr(cls, "OUTPUT_IS_LIST", [False] * len(cls.RETURN_TYPES)),
        "output_name": getattr(cls, "RETURN_NAMES", cls.RETURN_TYPES),
        "name": class_type,
        "display_name": nodes.NODE_DISPLAY_NAME_MAPPINGS.get(class_type, class_type),
        "description": getattr(cls, "DESCRIPTION", ""),
        "python_module": getattr(cls, "RELATIVE_PYTHON_MODULE", "nodes"),
        "category": getattr(cls, "CATEGORY", "sd"),
        "output_node": getattr(cls, "OUTPUT_NODE", False) is True,
    }
    if hasattr(cls, "OUTPUT_TOOLTIPS"):
        info["output_tooltips"] = cls.OUTPUT_TOOLTIPS
    for flag in ("DEPRECATED", "EXPERIMENTAL"):   # e.g. the host's Save LoRA Weights is experimental
        if getattr(cls, flag, False):
            info[flag.lower()] = True
    if hasattr(cls, "API_NODE"):
        info["api_node"] = cls.API_NODE
    return info


def object_info(host: Host | None = None) -> dict[str, dict[str, Any]]:
    """All node definitions (what ``GET /object_info`` returns)."""
    h = _host(host)
    out = {}
    for name in h.nodes.NODE_CLASS_MAPPINGS:
        try:
            out[name] = node_info(name, h)
        except Exception:  # the server logs and skips such nodes too
            log.exception("node info failed for %s", name)
    return out


def _info_lookup(host: Host) -> Callable[[str], dict[str, Any] | None]:
    cache: dict[str, dict[str, Any] | None] = {}

    def lookup(class_type: str):
        if class_type not in cache:
            cache[class_type] = node_info(class_type, host) if class_type in host.nodes.NODE_CLASS_MAPPINGS else None
        return cache[class_type]

    return lookup


# ----------------------------------------------------------------------------- preparing a prompt

def load_workflow(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WorkflowError(f"workflow not found: {path}") from None
    except json.JSONDecodeError as e:
        raise WorkflowError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(data, dict) or "nodes" not in data:
        raise WorkflowError(f"{path} is not a canvas workflow (no 'nodes'); save it from the editor with "
                            "Workflow > Save (not Export (API))")
    return data


def _place_input(image: Path, input_dir: Path) -> str:
    """Copy a file into the host's input folder (as an upload would); returns its name there.
    An existing different file of the same name is never overwritten."""
    if not image.is_file():
        raise WorkflowError(f"image not found: {image}")
    data = image.read_bytes()
    name = image.name
    dest = input_dir / name
    if dest.exists() and dest.read_bytes() != data:
        name = f"{image.stem}_{hashlib.sha256(data).hexdigest()[:8]}{image.suffix}"
        dest = input_dir / name
    if not dest.exists():
        input_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(image, dest)
    return name


def _checkpoint_name(ckpt: str | Path) -> str:
    """The ``ckpt_name`` for CheckpointLoaderSimple: a file anywhere (its folder is added to the
    host's checkpoint folders, first) or a name in the host's checkpoint folders."""
    import folder_paths

    path = Path(ckpt).expanduser()
    if path.is_file():
        folder_paths.add_model_folder_path("checkpoints", str(path.parent.resolve()), is_default=True)
        return path.name
    names = folder_paths.get_filename_list("checkpoints")
    if str(ckpt) in names:
        return str(ckpt)
    folders = ", ".join(folder_paths.get_folder_paths("checkpoints"))
    shown = ", ".join(names[:10]) + (" ..." if len(names) > 10 else "") if names else "none"
    raise WorkflowError(f"checkpoint {str(ckpt)!r} is neither a file nor a name in the checkpoint folders "
                        f"({folders}); available: {shown}")


def _apply_overrides(prompt: dict[str, dict[str, Any]], overrides: Mapping[Any, Mapping[str, Any]],
                     lookup: Callable[[str], dict[str, Any] | None] | None = None) -> None:
    """Set each override's inputs on the nodes it names (id, type or title); with ``lookup`` (node info by class), an
    input the node's class does not declare is an error (a value set there would be read by nothing)."""
    for ref, values in overrides.items():
        ref = str(ref)
        targets = [k for k in prompt if k == ref] or \
                  [k for k, v in prompt.items() if v["class_type"] == ref or v.get("_meta", {}).get("title") == ref]
        if not targets:
            raise WorkflowError(f"override {ref!r}: no node with that id, type or title in the workflow")
        for key in targets:
            info = lookup(prompt[key]["class_type"]) if lookup is not None else None
            for name, value in values.items():
                if info is not None and name != "paint_mask" and name not in prompt[key]["inputs"] and \
                        not any(name in info.get("input", {}).get(part, {}) for part in ("required", "optional")):
                    raise WorkflowError(f"override {ref!r}: node {key} ({prompt[key]['class_type']}) has no input "
                                        f"{name!r}")
                prompt[key]["inputs"][name] = value


def prepare_prompt(workflow: Mapping[str, Any], *, image: str | Path | None = None, ckpt: str | Path | None = None,
                   builtin: str | None = None, overrides: Mapping[Any, Mapping[str, Any]] | None = None,
                   host: Host | None = None) -> dict:
    """The API prompt for a canvas workflow, with the runner's replacements:

    - ``image``: every LoadImage loads this file (copied into the host's input folder); without
      it, a node naming a file bundled in ``assets/`` (``sample.png``, ``sample_inversion.safetensors``)
      gets it copied into the input folder if the folder lacks it.
    - ``ckpt``: every built-in model loader (``InvertEditToyModel``, ``InvertEditDemoModel``)
      becomes a stock ``CheckpointLoaderSimple`` of this checkpoint (same node id; MODEL, CLIP,
      VAE are in the same output slots), and every
      CheckpointLoaderSimple already in the workflow loads it.
    - ``builtin`` (the reverse: a key of ``BUILTIN_SWAPS``: ``"toy"`` (two objects, 512 px),
      ``"toy-one-object"`` (128 px), ``"toy-flow"`` (the flow DiT, 256 px), ``"demo-sd1"``, ``"demo-sd2-v"``, ``"demo-sdxl"``, ``"demo-flux-dev"``,
      ``"demo-flux-schnell"``, ``"demo-sd3"``, ``"demo-qwen-image"``): every
      ``CheckpointLoaderSimple`` becomes the pack's Toy World Model (or Demo Model of that family),
      same node id and MODEL, CLIP, VAE slots; a template on separate files (Load Diffusion Model,
      Load CLIP, Load VAE: ``MODEL_LOADERS``) gets one built-in model in its Load Diffusion Model's
      place, whose CLIP and VAE the other loaders' links take; every stock Upscale Image (``ImageScale``) or Scale
      Image to Total Pixels makes
      the built-in model's image size; and without ``image`` every LoadImage loads the bundled
      sample that model knows. Prompts and steps are left alone (``overrides``).
    - ``overrides``: ``{node id, type or title: {input: value}}`` set after conversion; a LoadImage's
      ``paint_mask`` ``[x, y, width, height]`` makes it load its image with that box painted as its
      mask, as the mask editor saves it (``_paint_masks``).
    """
    h = _host(host)
    if builtin is not None:
        if ckpt is not None:
            raise WorkflowError("--ckpt and --builtin both replace the model: give one of them")
        if builtin not in BUILTIN_SWAPS:
            raise WorkflowError(f"--builtin {builtin!r} is not a built-in model; use one of {', '.join(BUILTIN_SWAPS)}")
    try:
        prompt = canvas_to_api(workflow, _info_lookup(h))
    except ValueError as e:
        raise WorkflowError(str(e)) from None
    if builtin is not None:
        _swap_in_builtin(prompt, builtin)

    loaders = [k for k, v in prompt.items() if v["class_type"] == "LoadImage"]
    if builtin is not None and image is None and loaders:
        image = BUILTIN_SWAPS[builtin].image  # the image the built-in model knows
    if image is not None:
        if not loaders:
            raise WorkflowError("--image was given but the workflow has no LoadImage node")
        name = _place_input(Path(image).expanduser(), h.input_dir)
        for key in loaders:
            prompt[key]["inputs"]["image"] = name
    # The pack's bundled inputs (sample image, sample inversion) are supplied when a node names
    # one, before validation lists the folder's files; where the folder holds another file of that
    # name (an older pack's sample), the bundled one goes in beside it and the node reads that.
    for node in prompt.values():
        for key, value in node["inputs"].items():
            if isinstance(value, str) and value in BUNDLED:
                node["inputs"][key] = _place_input(BUNDLED[value], h.input_dir)

    if ckpt is not None:
        name = _checkpoint_name(ckpt)
        targets = [k for k, v in prompt.items() if v["class_type"] in BUILTIN_MODELS + (CHECKPOINT_LOADER,)]
        if not targets:
            raise WorkflowError(f"--ckpt was given but the workflow has no {', '.join(BUILTIN_MODELS)} or "
                                f"{CHECKPOINT_LOADER} node")
        for key in targets:
            prompt[key] = {"class_type": CHECKPOINT_LOADER, "inputs": {"ckpt_name": name},
                           "_meta": {"title": f"Load Checkpoint ({name})"}}

    if overrides:
        _apply_overrides(prompt, overrides, _info_lookup(h))
    _paint_masks(prompt, h.input_dir)
    return prompt


PAINT_MASK = "paint_mask"   # a LoadImage override: the box (x, y, width, height) its mask editor would paint


def _paint_masks(prompt: dict[str, dict[str, Any]], input_dir: Path) -> None:
    """Each LoadImage given ``PAINT_MASK`` (an override, ``[x, y, width, height]`` in pixels of the image it
    loads) loads instead a copy of its image that carries that box as a painted mask, as ComfyUI's mask
    editor saves one: an RGBA copy, transparent in the box (Load Image's MASK is 1 - alpha), placed in
    the input folder. A checkpoint workflow whose mask a user paints runs so on the built-in models."""
    import folder_paths
    from PIL import Image

    for key, node in prompt.items():
        box = node["inputs"].pop(PAINT_MASK, None)
        if box is None or node["class_type"] != "LoadImage":
            if box is not None:
                raise WorkflowError(f"override {PAINT_MASK!r} of node {key} ({node['class_type']}): only a LoadImage "
                                    "carries a painted mask")
            continue
        box = box.get("__value__", box) if isinstance(box, Mapping) else box
        try:
            x, y, width, height = (int(v) for v in box)
        except (TypeError, ValueError):
            raise WorkflowError(f"override {PAINT_MASK!r} of node {key}: {box!r} is not [x, y, width, height]") from None
        source = Path(folder_paths.get_annotated_filepath(node["inputs"]["image"]))
        with Image.open(source) as image:
            painted = image.convert("RGBA")
        if not (0 <= x and 0 <= y and 0 < width and 0 < height and x + width <= painted.width
                and y + height <= painted.height):
            raise WorkflowError(f"override {PAINT_MASK!r} of node {key}: the box {box!r} is not inside its "
                                f"{painted.width}x{painted.height} image")
        alpha = Image.new("L", painted.size, 255)
        alpha.paste(0, (x, y, x + width, y + height))
        painted.putalpha(alpha)
        with tempfile.TemporaryDirectory(prefix="invertedit-painted-") as folder:
            made = Path(folder) / f"{source.stem}_mask_{x}_{y}_{width}_{height}.png"
            painted.save(made)
            node["inputs"]["image"] = _place_input(made, input_dir)


def _swap_in_builtin(prompt: dict[str, dict[str, Any]], builtin: str) -> None:
    """Replace every Load Checkpoint by the built-in model ``builtin`` (same id and output slots), and the
    separate loaders of a model shipped as files (``MODEL_LOADERS``: Load Diffusion Model, Load CLIP, Load VAE)
    by one built-in model in the Load Diffusion Model's place, the links from the others taken to its CLIP
    and VAE; every Image Only Checkpoint Loader by the Demo 3D Model of its file's family (``IMAGE_ONLY_SWAPS``);
    and set every Upscale Image, Scale Image to Total Pixels, and every ModelSamplingFlux (the shift
    of the image's size) whose size is not linked, to the built-in models' image size."""
    class_type, widgets, title, size, _ = BUILTIN_SWAPS[builtin]
    loaders = {k: v["class_type"] for k, v in prompt.items() if v["class_type"] in MODEL_LOADERS}
    if not loaders:
        raise WorkflowError(f"--builtin was given but the workflow has no {CHECKPOINT_LOADER} (Load Checkpoint) or "
                            f"{UNET_LOADER} (Load Diffusion Model) node")
    models = [k for k, kind in loaders.items() if 0 in MODEL_LOADERS[kind]]
    parts = [k for k in loaders if k not in models]   # Load CLIP, Load VAE: their outputs come from the built-in model
    if parts and len(models) != 1:
        raise WorkflowError(f"--builtin: the workflow's separate loaders ({', '.join(loaders[k] for k in parts)}) need "
                            f"one Load Diffusion Model or Load Checkpoint to stand in for, not {len(models)}")
    for key in models:
        prompt[key] = {"class_type": class_type, "inputs": dict(widgets), "_meta": {"title": title}}
    for key in parts:
        slots = MODEL_LOADERS[prompt.pop(key)["class_type"]]
        for node in prompt.values():
            for name, value in node["inputs"].items():
                if isinstance(value, list) and len(value) == 2 and value[0] == key:
                    node["inputs"][name] = [models[0], slots[value[1]]]
    for key, node in list(prompt.items()):
        if node["class_type"] == IMAGE_ONLY_LOADER:
            name = str(node["inputs"].get("ckpt_name", ""))
            family = next((f for f in IMAGE_ONLY_SWAPS if name.lower().startswith(f)), None)
            if family is None:
                raise WorkflowError(f"--builtin: no built-in model stands in for {IMAGE_ONLY_LOADER} of {name!r}; "
                                    f"its file name should start with one of {', '.join(IMAGE_ONLY_SWAPS)}")
            prompt[key] = {"class_type": DEMO_3D_MODEL, "inputs": dict(IMAGE_ONLY_SWAPS[family]),
                           "_meta": {"title": f"Demo 3D Model {family} (in place of {name})"}}
    for node in prompt.values():
        if node["class_type"] in (IMAGE_SCALE, FLUX_SHIFT):
            for name in ("width", "height"):
                if not isinstance(node["inputs"].get(name), list):  # a linked size is the graph's own business
                    node["inputs"][name] = size
        elif node["class_type"] == TOTAL_PIXELS:
            node["inputs"]["megapixels"] = size * size / 1024 ** 2   # the bundled image is square


# ----------------------------------------------------------------------------- executing

class _Server:
    """What the executor and the nodes need of the server: ``send_sync``, ``send_progress_text``,
    ``client_id``, ``last_node_id``."""

    def __init__(self, on_event: Callable[[str, Any], None] | None = None):
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata: dict = {}
        self.on_event = on_event

    def send_sync(self, event, data, sid=None):
        if self.on_event is not None:
            self.on_event(event, data)

    def queue_updated(self):
        pass

    def send_progress_text(self, text, node_id, sid=None):
        """What a node shows on itself while it runs (Get Image Size's "width: ..."), as the server sends it."""
        if self.on_event is not None:
            self.on_event("progress_text", {"node": str(node_id), "text": text})


def _run(result):
    return asyncio.run(result) if inspect.isawaitable(result) else result


def _validation_message(error: Mapping[str, Any] | None, node_errors: Mapping[str, Any], prompt: Mapping) -> str:
    lines = []
    if error:
        lines.append(f"{error.get('message', 'invalid prompt')}" + (f": {error['details']}" if error.get("details") else ""))
    for node_id, entry in node_errors.items():
        title = prompt.get(node_id, {}).get("_meta", {}).get("title")
        name = f"node {node_id} ({entry.get('class_type')}" + (f" {title!r})" if title and title != entry.get("class_type") else ")")
        for reason in entry.get("errors", []):
            detail = reason.get("details")
            lines.append(f"  {name}: {reason.get('message')}" + (f": {detail}" if detail else ""))
    return "workflow failed validation:\n" + "\n".join(lines)


def execute(prompt: Mapping[str, Any], *, extra_data: Mapping[str, Any] | None = None, host: Host | None = None,
            allow_partial: bool = False, on_event: Callable[[str, Any], None] | None = None) -> dict[str, Any]:
    """Validate and execute an API prompt in-process; returns the UI outputs per node
    (``{node_id: {"images": [{"filename", "subfolder", "type"}]}}``).

    Raises :class:`WorkflowError` listing each node's validation errors, or naming the node
    whose execution failed with its exception (the executor records failures as messages
    rather than raising). With ``allow_partial``, outputs that validate run even if others do
    not (as the server does)."""
    h = _host(host)
    execution = h.execution
    prompt = json.loads(json.dumps(prompt))  # the executor may annotate it; keep the caller's
    prompt_id = str(uuid.uuid4())
    validate = execution.validate_prompt
    n_params = len(inspect.signature(validate).parameters)  # (prompt_id, prompt, partial) in 0.3.6x
    args = (prompt_id, prompt, None) if n_params >= 3 else (prompt_id, prompt) if n_params == 2 else (prompt,)
    valid, error, outputs, node_errors = _run(validate(*args))
    if not valid or (node_errors and not allow_partial):
        raise WorkflowError(_validation_message(error if not valid else None, node_errors or {}, prompt))

    def relay(event, data):
        if event == "executing" and isinstance(data, dict) and data.get("node") in prompt:
            data = {**data, "class_type": prompt[data["node"]]["class_type"]}
        on_event(event, data)

    server = _Server(relay if on_event is not None else None)
    cache_type = getattr(getattr(execution, "CacheType", None), "CLASSIC", False)
    executor = execution.PromptExecutor(server, cache_type=cache_type)
    data = dict(extra_data or {})
    if on_event is not None:
        data.setdefault("client_id", "headless")
    # nodes that talk to the server (Get Image Size's text on the node) reach it as PromptServer.instance: the
    # server's own where one runs, else this executor's
    import server as host_server

    own = getattr(host_server.PromptServer, "instance", None) is None
    if own:
        host_server.PromptServer.instance = server
    try:
        executor.execute(prompt, prompt_id, data, outputs)
    finally:
        if own:
            del host_server.PromptServer.instance
    for event, message in executor.status_messages:
        if event == "execution_error":
            tb = "".join(message.get("traceback") or [])
            err = WorkflowError(f"node {message.get('node_id')} ({message.get('node_type')}) failed: "
                                f"{message.get('exception_type')}: {message.get('exception_message')}")
            err.traceback = tb
            raise err
        if event == "execution_interrupted":
            raise WorkflowError(f"execution was interrupted at node {message.get('node_id')} ({message.get('node_type')})")
    if not executor.success:
        raise WorkflowError("execution failed (no error message recorded)")
    return dict(executor.history_result.get("outputs", {}))


def saved_files(outputs: Mapping[str, Any], key: str | None = None) -> list[Path]:
    """Files that output nodes wrote to the output folder, as their UI outputs list them
    (``{"filename", "subfolder", "type": "output"}``): SaveImage's ``images``, saved inversions.
    ``key`` keeps one kind (e.g. "images")."""
    import folder_paths

    base = Path(folder_paths.get_directory_by_type("output"))
    files = []
    for ui in outputs.values():
        for kind, items in (ui or {}).items():
            if (key is not None and kind != key) or not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, Mapping) and item.get("type") == "output" and item.get("filename"):
                    path = base / (item.get("subfolder") or "") / item["filename"]
                    if path.is_file() and path not in files:
                        files.append(path)
    return files


def saved_images(outputs: Mapping[str, Any]) -> list[Path]:
    """The images SaveImage nodes wrote."""
    return saved_files(outputs, "images")


class Picture(NamedTuple):
    """An image an output node showed: the node's id, class, title, and the file (in the output
    folder for Save Image, in the temporary folder for Preview Image)."""
    node: str
    class_type: str
    title: str
    path: Path


def pictures(prompt: Mapping[str, Any], outputs: Mapping[str, Any]) -> list[Picture]:
    """Every image the prompt's Save Image and Preview Image nodes showed, in the order they ran
    (``outputs`` as :func:`execute` returns them)."""
    import folder_paths

    found = []
    for key, ui in outputs.items():
        node = prompt.get(key) or {}
        for item in (ui or {}).get("images") or []:
            if not isinstance(item, Mapping) or item.get("type") not in ("output", "temp") or not item.get("filename"):
                continue
            path = Path(folder_paths.get_directory_by_type(item["type"])) / (item.get("subfolder") or "") / item["filename"]
            if path.is_file():
                found.append(Picture(str(key), node.get("class_type", ""), (node.get("_meta") or {}).get("title", ""), path))
    return found


def run_workflow(path: str | Path, out_dir: str | Path, image: str | Path | None = None, ckpt: str | Path | None = None,
                 overrides: Mapping[Any, Mapping[str, Any]] | None = None, *, builtin: str | None = None,
                 host: Host | None = None, on_event: Callable[[str, Any], None] | None = None) -> list[Path]:
    """Run a canvas workflow file; copy the files its output nodes wrote (SaveImage's images,
    saved inversions) from the host's output folder into ``out_dir``, keeping their subfolders,
    and return the copies' paths."""
    h = _host(host)
    workflow = load_workflow(path)
    prompt = prepare_prompt(workflow, image=image, ckpt=ckpt, builtin=builtin, overrides=overrides, host=h)
    # The UI embeds the workflow in saved PNGs; so do we, so an output opens in the editor.
    outputs = execute(prompt, extra_data={"extra_pnginfo": {"workflow": workflow}}, host=h, on_event=on_event)
    out_dir = Path(out_dir)
    written = []
    import folder_paths

    output_dir = Path(folder_paths.get_output_directory())
    for src in saved_files(outputs):
        rel = src.relative_to(output_dir) if src.is_relative_to(output_dir) else Path(src.name)
        dest = out_dir / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        written.append(dest)
    return written
