"""Attention control's generic pieces, host-agnostic (torch/numpy/einops only): the policy contract
and its call's whereabouts, explicit maps, attention with its log-sum-exp, token alignment, and
Prompt-to-Prompt's controllers, schedule and local blend, which the UNet and the joint-attention
versions both use. Each technique's own policy is in its folder."""
