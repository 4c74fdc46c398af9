import torch

from invertedit.guidance.diffedit import diffedit_mask


def test_mask_marks_where_the_prompts_disagree():
    region = torch.zeros(1, 1, 8, 8)
    region[..., 2:5, 3:7] = 1

    def eps_pair(x, sigma):   # the prompts' predictions differ inside the region only (plus shared noise)
        return x * 0.1, x * 0.1 + 2.0 * region

    noises = torch.randn(10, 1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    mask, soft = diffedit_mask(eps_pair, torch.zeros(1, 4, 8, 8), torch.tensor(3.0), noises)
    assert torch.equal(mask, region) and float(soft.max()) == 1.0 and float(soft.min()) == 0.0
