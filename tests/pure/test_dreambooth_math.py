"""DreamBooth's math (``invertedit/personalisation/denoising_loss.py``) and the shared optimiser loop
(``personalisation/training.py``): exact properties."""
import pytest
import torch

from invertedit.personalisation.denoising_loss import batch_order, draw, dreambooth_loss, noised, step_loss, v_weight
from invertedit.personalisation.training import optimize

_BETAS = torch.linspace(0.00085 ** 0.5, 0.012 ** 0.5, 1000, dtype=torch.float64) ** 2
_ABAR = torch.cumprod(1 - _BETAS, 0)
SIGMAS = ((1 - _ABAR) / _ABAR).sqrt()


@pytest.mark.parametrize("instances,classes,batch", [(3, 5, 2), (4, 0, 1), (5, 2, 4), (2, 7, 3)])
def test_each_epoch_pairs_every_item_once_as_the_scripts_dataset(instances, classes, batch):
    """An epoch has max(instances, classes) items (the script's DreamBoothDataset length), each once,
    item i pairing instance i % instances with class i % classes, in batches of ``batch``."""
    order = batch_order(instances, classes, batch, torch.Generator().manual_seed(0))
    length = max(instances, classes)
    epoch = []
    while len(epoch) < length:
        b = next(order)
        assert 1 <= len(b) <= batch
        epoch += b
    assert len(epoch) == length
    expected = sorted((i % instances, i % classes if classes else -1) for i in range(length))
    assert sorted(epoch) == expected


def test_the_order_and_draws_come_from_the_generator_alone():
    a, b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    oa, ob = batch_order(3, 4, 2, a), batch_order(3, 4, 2, b)
    for _ in range(5):
        assert next(oa) == next(ob)
        na, ta = draw((4, 4, 8, 8), a)
        nb, tb = draw((4, 4, 8, 8), b)
        assert torch.equal(na, nb) and torch.equal(ta, tb) and ta.shape == (4,) and 0 <= int(ta.min()) <= int(ta.max()) < 1000


def test_the_loss_is_instance_plus_lambda_prior():
    g = torch.Generator().manual_seed(0)
    eps, noise = torch.randn(6, 4, 5, 5, generator=g), torch.randn(6, 4, 5, 5, generator=g)
    loss, inst, prior = dreambooth_loss(eps, noise, 3, 0.7)
    assert torch.allclose(inst, ((eps[:3] - noise[:3]) ** 2).mean()) and torch.allclose(prior, ((eps[3:] - noise[3:]) ** 2).mean())
    assert torch.equal(loss, inst + 0.7 * prior)
    alone, inst_alone, none = dreambooth_loss(eps[:3], noise[:3], 3, 0.7)
    assert none is None and torch.equal(alone, inst_alone) and torch.equal(alone, inst)


def test_for_a_v_model_the_weighted_noise_error_is_the_velocity_error():
    """The script's v loss, mean((v_pred - v)^2) with v = sqrt(abar) eps - sqrt(1 - abar) x0, equals
    the noise error weighted by 1 + sigma^2, for any prediction (to float32 rounding)."""
    g = torch.Generator().manual_seed(1)
    x0, noise = torch.randn(4, 4, 6, 6, generator=g, dtype=torch.float64), torch.randn(4, 4, 6, 6, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 999])
    a, s = _ABAR[t].sqrt().view(-1, 1, 1, 1), (1 - _ABAR[t]).sqrt().view(-1, 1, 1, 1)
    xt = a * x0 + s * noise
    v_pred = torch.randn(4, 4, 6, 6, generator=g, dtype=torch.float64)
    eps_pred = s * xt + a * v_pred   # the noise a v prediction implies
    v = a * noise - s * x0
    reference = ((v_pred - v) ** 2).mean()
    weight = v_weight(SIGMAS[t])
    ours = (((eps_pred - noise) ** 2) * weight.view(-1, 1, 1, 1)).mean()
    assert abs(float(ours) - float(reference)) < 1e-6 * float(reference)   # (the weight is float32, as the loss)


def test_step_loss_feeds_the_model_the_noised_latents():
    seen = {}

    def eps_fn(x, sigma):
        seen["x"], seen["sigma"] = x, sigma
        return torch.zeros_like(x)

    g = torch.Generator().manual_seed(2)
    x0, noise = torch.randn(4, 4, 3, 3, generator=g), torch.randn(4, 4, 3, 3, generator=g)
    sigma = SIGMAS[torch.tensor([1, 2, 3, 4])].float()
    loss, inst, prior = step_loss(eps_fn, x0, noise, sigma, 2, 1.0, v_prediction=False)
    assert torch.equal(seen["x"], noised(x0, noise, sigma)) and torch.equal(seen["sigma"], sigma)
    assert torch.allclose(loss, (noise[:2] ** 2).mean() + (noise[2:] ** 2).mean())


def test_adamw_with_clipping_is_torchs():
    """``optimize`` with weight decay and a gradient-norm bound is torch's AdamW after
    clip_grad_norm_ each step (the scripts' loop), bit for bit against its fused kernel (the one
    ``optimize`` runs) and to float32's rounding against its default one; without them, torch's Adam."""
    target = torch.tensor([3.0, -4.0, 12.0])

    def run(weight_decay, max_grad_norm):
        p = torch.zeros(3, requires_grad=True)
        losses = optimize([p], lambda i: ((p - target) ** 2).sum() * (i + 1), 5, 0.1, weight_decay=weight_decay,
                          max_grad_norm=max_grad_norm)
        return p.detach(), losses

    def reference(opt_class, clip, **kw):
        p = torch.zeros(3, requires_grad=True)
        opt = opt_class([p], lr=0.1, **kw)   # fused=True: the implementation optimize picks
        for i in range(5):
            loss = ((p - target) ** 2).sum() * (i + 1)
            opt.zero_grad()
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_([p], clip)
            opt.step()
        return p.detach()

    ours, losses = run(1e-2, 1.0)
    assert torch.equal(ours, reference(torch.optim.AdamW, 1.0, weight_decay=1e-2, fused=True)) and len(losses) == 5
    assert torch.equal(run(None, None)[0], reference(torch.optim.Adam, None, fused=True))
    # the scripts' AdamW is torch's default implementation: the fused kernel rounds differently on some CPUs
    # (an AMD EPYC here, 2026-11-28; bit for bit on the earlier machines), within float32's rounding
    torch.testing.assert_close(ours, reference(torch.optim.AdamW, 1.0, weight_decay=1e-2), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(run(None, None)[0], reference(torch.optim.Adam, None), rtol=1e-6, atol=1e-7)
    assert not torch.equal(ours, run(1e-2, None)[0])   # the clipping acts


def test_a_difference_from_frozen_weights_trains_as_the_whole_weight():
    """``optimize`` with ``base``: AdamW (weight decay, clipping) on differences D from frozen weights W0
    moves W0 + D exactly as torch's AdamW moves the weight W itself (the scripts' full fine-tune)."""
    g = torch.Generator().manual_seed(0)
    w0 = [torch.randn(4, 3, generator=g, dtype=torch.float64), torch.randn(5, generator=g, dtype=torch.float64)]
    targets = [torch.randn_like(w) for w in w0]

    def loss_of(weights):
        return lambda i: sum(((w * (i + 1) - t) ** 2).sum() for w, t in zip(weights(), targets))

    whole = [w.clone().requires_grad_(True) for w in w0]
    diffs = [torch.zeros_like(w, requires_grad=True) for w in w0]
    with torch.enable_grad():
        ours = optimize(diffs, loss_of(lambda: [b + d for b, d in zip(w0, diffs)]), 5, 0.1, weight_decay=0.3,
                        max_grad_norm=1.0, base=lambda: w0)
        theirs = optimize(whole, loss_of(lambda: whole), 5, 0.1, weight_decay=0.3, max_grad_norm=1.0)
    assert ours == pytest.approx(theirs, rel=1e-12)
    for b, d, w in zip(w0, diffs, whole):
        torch.testing.assert_close(b + d.detach(), w.detach(), rtol=1e-12, atol=1e-12)
    without = [torch.zeros_like(w, requires_grad=True) for w in w0]   # the decay on D alone is not it
    with torch.enable_grad():
        optimize(without, loss_of(lambda: [b + d for b, d in zip(w0, without)]), 5, 0.1, weight_decay=0.3,
                 max_grad_norm=1.0)
    assert not torch.allclose(w0[0] + without[0].detach(), whole[0].detach(), rtol=1e-6)


@pytest.mark.parametrize("weight_decay", [None, 0.01])
def test_a_run_kept_after_k_steps_resumes_as_an_unbroken_run(weight_decay):
    """``optimize`` with ``keep``: the moments kept after step 3 of 7 (every 3 steps) and the params
    then, given back as ``start`` 3 and ``moments``, give the unbroken run's last 4 losses and final
    params bit for bit; the moments kept on an exception are those after the last step done."""
    target = torch.tensor([1.0, -2.0, 0.5])

    def loss_of(p):
        return lambda i: ((p - target) ** 2 * (i + 1)).sum()

    whole = torch.zeros(3, requires_grad=True)
    losses = optimize([whole], loss_of(whole), 7, 0.1, weight_decay=weight_decay, max_grad_norm=1.0)
    kept = {}
    part = torch.zeros(3, requires_grad=True)

    def keep(done, moments):
        kept.setdefault(done, (part.detach().clone(), [(m.clone(), v.clone()) for m, v in moments]))

    def stop(i):
        if i == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        optimize([part], loss_of(part), 7, 0.1, before_step=stop, weight_decay=weight_decay, max_grad_norm=1.0,
                 keep=keep, keep_every=3)
    assert sorted(kept) == [3, 5]
    values, moments = kept[3]
    again = values.clone().requires_grad_(True)
    rest = optimize([again], loss_of(again), 7, 0.1, weight_decay=weight_decay, max_grad_norm=1.0, start=3,
                    moments=moments)
    assert rest == losses[3:] and torch.equal(again, whole)
