"""Reading the meshes a workflow's SaveGLB wrote (issue 83): the vertex count of a GLB file (its first mesh's
POSITION accessor), and ``test_workflows``' mechanics check that every SaveGLB of a 3D workflow wrote a mesh with
vertices (the host writes one zero vertex for an empty voxel grid)."""
from __future__ import annotations

import json
import struct
from pathlib import Path


def glb_vertices(path: Path) -> int:
    """The vertex count of the GLB at ``path`` (binary glTF 2: a 12-byte header, then the JSON chunk)."""
    data = path.read_bytes()
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2 and length == len(data), (magic, version, length, len(data))
    chunk, kind = struct.unpack_from("<I4s", data, 12)
    assert kind == b"JSON"
    gltf = json.loads(data[20:20 + chunk])
    return gltf["accessors"][gltf["meshes"][0]["primitives"][0]["attributes"]["POSITION"]]["count"]


def saved_meshes(prompt: dict, outputs: dict, output_dir: Path) -> list[Path]:
    """The GLB files every SaveGLB node of ``prompt`` wrote (its ``3d`` results)."""
    files = []
    for key in sorted(k for k, v in prompt.items() if v["class_type"] == "SaveGLB"):
        results = outputs.get(key, {}).get("3d") or []
        assert results, f"SaveGLB node {key} wrote nothing"
        files += [output_dir / r["subfolder"] / r["filename"] for r in results]
    return files


def glb_with_vertices(prompt, outputs, runner, host) -> None:
    """Every SaveGLB wrote a mesh file with more than the empty grid's one vertex."""
    files = saved_meshes(prompt, outputs, Path(host.output_dir))
    assert files, "no SaveGLB in the workflow"
    for f in files:
        vertices = glb_vertices(f)
        print(f"{f.name}: {vertices} vertices")
        assert vertices > 3, f"{f.name}: an empty mesh ({vertices} vertices)"


GLB_WORKFLOWS = ("Toy - Views to 3D (Hunyuan3D-2)", "Hunyuan3D-2 - Edit four views and rebuild in 3D (your models)",
                 "SV3D - Edit the orbit views of one image (your models)")
GLB_CHECKS = {name: glb_with_vertices for name in GLB_WORKFLOWS}
