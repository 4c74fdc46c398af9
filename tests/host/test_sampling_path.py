"""The sampling-path watch (``workshop/headless/hygiene.py``) that every shipped workflow runs under
in ``test_workflows``: it reports, with file and line, what fails or stalls only on a GPU (issue 23:
Attention Store's ``.cpu()`` failed on CUDA alone), and nothing outside the host's sampling."""
from __future__ import annotations

import operator
from pathlib import Path

import torch

from workshop.headless.calls import call, encode
from workshop.headless.hygiene import SamplingPathWatch

HERE = Path(__file__).resolve().parent


class _BadPatch:
    """An attn2 replace patch with the classes of bug the watch is for, and one marked line."""

    def __call__(self, q, k, v, extra_options):
        from invertedit.hostkit.attention_maps import host_attention

        base = q.float().cpu()                      # as Attention Store's heatmaps did, in the sampling path
        scale = torch.full((1,), 0.5)               # made on the CPU, whatever the model's device
        if float(base.abs().max()) > 1e9:           # the CPU waits for the device
            raise AssertionError
        _ = torch.zeros(2)  # sampling-path-ok: the opt-out marker is honoured
        return host_attention(q, k, v, extra_options) * (1 + 0 * scale.to(q))


def _sample(host, model, clip):
    latent = {"samples": torch.zeros(1, 4, 8, 8)}
    return call(host, "KSamplerAdvanced", model=model, add_noise="enable", noise_seed=0, steps=2, cfg=2.0,
                sampler_name="ddim", scheduler="ddim_uniform", positive=encode(host, clip, "a"),
                negative=encode(host, clip, ""), latent_image=latent, start_at_step=0, end_at_step=10000,
                return_with_leftover_noise="disable")


def test_the_watch_reports_gpu_only_failures_in_the_sampling_path_with_their_lines(host, tiny):
    model, clip, _ = tiny("sd1")
    m = model.clone()
    m.set_model_attn2_replace(_BadPatch(), "input", 1)
    with SamplingPathWatch(HERE) as watch:
        _BadPatch.__call__  # noqa: B018  (outside the sampling: nothing is recorded)
        torch.zeros(3).cpu()
        _sample(host, m, clip)
    kinds = {(kind, where.split(":")[0].rsplit("/", 1)[-1]) for kind, where, _ in watch.findings}
    assert kinds == {("cpu()", "test_sampling_path.py"), ("torch.full without device=", "test_sampling_path.py"),
                     ("float(tensor)", "test_sampling_path.py")}, watch.report()
    lines = {line for _, _, line in watch.findings}
    assert not any("sampling-path-ok" in line for line in lines)
    assert "base = q.float().cpu()" in " ".join(lines)


def test_the_stock_sampler_and_a_clean_patch_report_nothing(host, tiny):
    from invertedit.hostkit.attention_maps import host_attention

    model, clip, _ = tiny("sd1")
    m = model.clone()
    m.set_model_attn2_replace(lambda q, k, v, extra: host_attention(q, k, v, extra), "input", 1)
    with SamplingPathWatch(HERE) as watch:
        _sample(host, m, clip)
    assert watch.findings == []


class _EveryKindPatch:
    """An attn2 replace patch that makes each round trip and each CPU factory the watch names once,
    every factory also once with ``device=`` (which is not a finding)."""

    def __call__(self, q, k, v, extra_options):
        from invertedit.hostkit.attention_maps import host_attention

        one = q.flatten()[:1]
        one.cpu()
        one.numpy()
        one.item()
        one.tolist()
        int(one)
        float(one)
        bool(one.abs() >= 0)
        operator.index(one.long()[0])
        one.nonzero()
        torch.nonzero(one)
        factories = {"tensor": (1.0,), "zeros": (1,), "ones": (1,), "full": ((1,), 1.0), "empty": (1,),
                     "arange": (2,), "linspace": (0.0, 1.0, 2), "randn": (1,), "rand": (1,),
                     "randint": (0, 2, (1,)), "eye": (2,), "as_tensor": ([1.0],), "scalar_tensor": (1.0,)}
        for name, args in factories.items():
            getattr(torch, name)(*args)
            getattr(torch, name)(*args, device=q.device)
        return host_attention(q, k, v, extra_options)


def test_the_watch_names_every_kind_it_watches(host, tiny):
    """Each of the watch's kinds (the tensor methods that bring a value to the CPU or wait for the
    device, and the factories without ``device=``) is reported from a patch in the sampling path;
    the factories given ``device=`` are not."""
    from workshop.headless import hygiene

    model, clip, _ = tiny("sd1")
    m = model.clone()
    m.set_model_attn2_replace(_EveryKindPatch(), "input", 1)
    with SamplingPathWatch(HERE) as watch:
        _sample(host, m, clip)
    kinds = {kind for kind, _, _ in watch.findings}
    expected = set(hygiene._TO_HOST.values()) | {f"torch.{name} without device=" for name in hygiene._FACTORIES}
    assert kinds == expected, watch.report()
    assert not [line for _, _, line in watch.findings if "device=q.device" in line]
    nonzero = {line for kind, _, line in watch.findings if kind == hygiene._TO_HOST["nonzero"]}
    assert nonzero == {"one.nonzero()", "torch.nonzero(one)"}, nonzero   # the method and the function
