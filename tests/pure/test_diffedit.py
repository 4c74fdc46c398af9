import torch

from invertedit.techniques.diffedit.mask import diffedit_mask


def test_mask_marks_where_the_prompts_disagree():
    region = torch.zeros(1, 1, 8, 8)
    region[..., 2:5, 3:7] = 1

    def eps_pair(x, sigma):   # the prompts' predictions differ inside the region only (plus shared noise)
        return x * 0.1, x * 0.1 + 2.0 * region

    noises = torch.randn(10, 1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    mask, soft = diffedit_mask(eps_pair, torch.zeros(1, 4, 8, 8), torch.tensor(3.0), noises)
    assert torch.equal(mask, region) and float(soft.max()) == 1.0 and float(soft.min()) >= 0.0


def test_extreme_values_are_clamped_at_three_times_the_mean():
    """As diffusers' generate_mask (the method's public code): a few extreme pixels do not squash
    the rest of the region below the threshold, as a division by the maximum would."""
    region = torch.zeros(1, 1, 8, 8)
    region[..., 1:6, 1:6] = 1.0
    spike = torch.zeros(1, 1, 8, 8)
    spike[..., 3, 3] = 10.0   # divided by the maximum, the rest of the region would read 1 / 11

    def eps_pair(x, sigma):
        return x * 0.0, x * 0.0 + region + spike

    noises = torch.zeros(2, 1, 4, 8, 8)
    mask, soft = diffedit_mask(eps_pair, torch.zeros(1, 4, 8, 8), torch.tensor(1.0), noises)
    mean = float((region + spike).mean())
    assert torch.equal(mask, region)                         # 1 > 1.5 x mean everywhere in the region
    assert torch.allclose(soft, torch.minimum(region + spike, torch.tensor(3 * mean)) / (3 * mean))
