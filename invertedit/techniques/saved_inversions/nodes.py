"""Save Inversion / Load Inversion: invert once, edit many times, share the file.

Files are safetensors only (tensors plus JSON metadata; never pickle), written inside the
host's output folder and read from its input folder (or its output folder, annotated
``[output]``); names that would escape those folders are refused.
"""
from __future__ import annotations

import os

from ...hostkit.schemas import io

from ...hostkit.errors import NodeInputError, check_inversion
from ...hostkit.inversion_files import (SUBFOLDER, list_inversion_files, load_inversion, relative_to_output,
                                         resolve_inversion_file, save_inversion)
from ...hostkit.inverters import inverted_latent
from ...hostkit.sockets import Inversion as InversionSocket


class SaveInversion(io.ComfyNode):
    NAME = "Save Inversion"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditSaveInversion",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description="Saves an INVERSION as a .safetensors file in the output folder, to edit again later or share.",
            inputs=[
                InversionSocket.Input("inversion", tooltip="The inversion to save."),
                io.String.Input("filename_prefix", default=f"{SUBFOLDER}/inversion",
                                tooltip="Relative to the output folder; a counter and .safetensors are appended."),
            ],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, inversion, filename_prefix) -> io.NodeOutput:
        check_inversion(cls.NAME, inversion)
        path = save_inversion(inversion, filename_prefix)
        rel = relative_to_output(path)
        subfolder, filename = os.path.split(rel)
        return io.NodeOutput(ui={"text": [f"saved {rel}"],
                                 "inversions": [{"filename": filename, "subfolder": subfolder, "type": "output"}]})


class LoadInversion(io.ComfyNode):
    NAME = "Load Inversion"

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="InvertEditLoadInversion",
            display_name=cls.NAME,
            category="InvertEdit/inversion",
            description=("Loads an INVERSION saved by Save Inversion (from the input folder, or the output folder's "
                         "inversions/). Connect it through Apply Inversion: a different model, schedule or size is refused there."),
            inputs=[
                io.Combo.Input("inversion", options=list_inversion_files(),
                               tooltip="A .safetensors inversion file from the input folder, or from output/inversions ([output])."),
            ],
            outputs=[
                InversionSocket.Output(display_name="INVERSION"),
                io.Latent.Output(display_name="LATENT", tooltip="The inverted latent: KSamplerAdvanced with add_noise disabled."),
                io.Sigmas.Output(display_name="SIGMAS", tooltip="The schedule back to the image, for SamplerCustomAdvanced."),
            ],
        )

    @classmethod
    def validate_inputs(cls, inversion, input_types=None) -> bool | str:
        if inversion is None:
            if "inversion" in (input_types or {}):   # a link: its value comes later; execute checks it
                return True
            # a list sent as {"__value__": [...]}: the host unwraps it into what its executor takes for
            # a link to a node that does not exist, and that stops its prompt worker (host 0.3.64)
            return (f"{cls.NAME}: input 'inversion' is a list, not a file name; choose a .safetensors file from "
                    f"the list.")
        try:
            resolve_inversion_file(inversion)
        except NodeInputError as e:
            return str(e)
        return True

    @classmethod
    def fingerprint_inputs(cls, inversion):
        try:
            st = os.stat(resolve_inversion_file(inversion))
            return (inversion, st.st_mtime_ns, st.st_size)
        except (NodeInputError, OSError):
            return inversion

    @classmethod
    def execute(cls, inversion) -> io.NodeOutput:
        inv = load_inversion(resolve_inversion_file(inversion))
        return io.NodeOutput(inv, inverted_latent(inv), inv.sampling_sigmas)


NODES = [SaveInversion, LoadInversion]
