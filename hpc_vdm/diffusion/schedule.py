"""The noise schedule γ(t) = b + |w| t (learned or fixed) and the quantities derived from it."""
from __future__ import annotations

import torch
from torch import nn


class LinearSchedule(nn.Module):
    """γ(t) = b + |w| t, monotone by construction; init b = γ_min, w = γ_max − γ_min.

    ``learned=False`` freezes b and w (the fixed linear schedule). dγ/dt = |w| for every t.
    """

    def __init__(self, gamma_min: float = -13.3, gamma_max: float = 13.3, *, learned: bool = True):
        super().__init__()
        if not gamma_max > gamma_min:
            raise ValueError(f"gamma_max must exceed gamma_min, got gamma_min={gamma_min}, gamma_max={gamma_max}")
        # shape (1,), not (): DeepSpeed broadcasts parameters as bytes, which 0-d tensors cannot be viewed as
        self.b = nn.Parameter(torch.tensor([float(gamma_min)]), requires_grad=learned)
        self.w = nn.Parameter(torch.tensor([float(gamma_max - gamma_min)]), requires_grad=learned)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """γ at times ``t`` (any shape, the result has it too), computed in fp32."""
        return self.b[0].float() + self.w[0].float().abs() * t.float()

    def dgamma_dt(self, t: torch.Tensor) -> torch.Tensor:
        return self.w[0].float().abs().expand_as(t)


def alpha_sigma(gamma: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(α, σ) with α² = sigmoid(−γ), σ² = sigmoid(γ) (so α² + σ² = 1)."""
    return torch.sigmoid(-gamma).sqrt(), torch.sigmoid(gamma).sqrt()
