"""The INVERSION record: serialisation round trip and the checks consumers rely on."""
import pytest
import torch

from invertedit.inversion.record import Inversion, InversionMismatch


def make(start=0, steps=10):
    sigmas = torch.cat([torch.linspace(14.6, 0.03, steps), torch.zeros(1)])
    n = steps + 1 - start
    g = torch.Generator().manual_seed(0)
    return Inversion(
        method="ddim", sigmas=sigmas, start_step=start,
        trajectory=torch.randn(n, 1, 4, 8, 8, generator=g), latent=torch.randn(1, 4, 8, 8, generator=g),
        settings={"steps": steps, "scheduler": "ddim_uniform", "cfg": 1.0, "start_at_step": start},
        fingerprint={"model.weights": "abc", "positive": "def"},
        clues={"offsets": torch.randn(n - 1, 1, 4, 8, 8, generator=g)},
    )


def test_state_round_trip_is_bit_identical():
    inv = make(start=3)
    tensors, meta = inv.to_state()
    assert all(isinstance(v, str) for v in meta.values())
    back = Inversion.from_state(tensors, meta)
    assert back.method == "ddim" and back.start_step == 3
    assert back.settings == inv.settings and back.fingerprint == inv.fingerprint
    for a, b in [(back.sigmas, inv.sigmas), (back.trajectory, inv.trajectory), (back.latent, inv.latent),
                 (back.clues["offsets"], inv.clues["offsets"])]:
        assert torch.equal(a, b)


def test_from_state_refuses_other_files():
    with pytest.raises(InversionMismatch, match="format"):
        Inversion.from_state({"sigmas": torch.zeros(2)}, {})


def test_locate_accepts_the_schedule_and_its_tails():
    inv = make(start=2)
    assert inv.locate(inv.sampling_sigmas) == 2
    assert inv.locate(inv.sigmas[5:]) == 5                      # a later start (KSamplerAdvanced start_at_step=5)
    cut = inv.sigmas[2:7].clone(); cut[-1] = 0                   # end_at_step with force_full_denoise
    assert inv.locate(cut) == 2


@pytest.mark.parametrize("bad", ["fewer_steps", "before_start", "other_values"])
def test_locate_refuses_other_schedules_with_what_would_work(bad):
    inv = make(start=2)
    run = {"fewer_steps": torch.cat([torch.linspace(14.6, 0.03, 5), torch.zeros(1)]),
           "before_start": inv.sigmas,
           "other_values": inv.sampling_sigmas * 1.1}[bad]
    with pytest.raises(InversionMismatch, match=r"steps=10, scheduler=ddim_uniform and start_at_step=2"):
        inv.locate(run)


def test_check_latent_compares_channels_and_size_not_batch():
    inv = make()
    inv.check_latent((2, 4, 8, 8))
    with pytest.raises(InversionMismatch, match=r"\(4, 16, 16\)"):
        inv.check_latent((1, 4, 16, 16))


def test_trajectory_must_match_schedule():
    inv = make()
    with pytest.raises(ValueError, match="trajectory"):
        Inversion("ddim", inv.sigmas, 0, inv.trajectory[:3], inv.latent)
