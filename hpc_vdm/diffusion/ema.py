"""Exponential moving average of a model's weights, kept in fp32 whatever the training precision."""
from __future__ import annotations

from typing import Iterable

import torch
from torch import nn


class EMA:
    """θ_ema <- d θ_ema + (1 − d) θ with d = min(decay, (1 + n)/(10 + n)) after n updates (fast early warm-up).

    ``decay=0`` makes the EMA equal to the latest weights, and a weight that does not move (a frozen one) keeps its
    value to the bit. Holds one fp32 tensor per parameter name.
    """

    def __init__(self, named_params: Iterable[tuple[str, torch.Tensor]], decay: float = 0.9999):
        if not 0.0 <= decay < 1.0 + 1e-12:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.decay, self.updates = float(decay), 0
        self.shadow = {name: p.detach().float().clone() for name, p in named_params}

    def current_decay(self) -> float:
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, named_params: Iterable[tuple[str, torch.Tensor]]) -> None:
        d = self.current_decay()
        for name, p in named_params:
            self.shadow[name].lerp_(p.detach().float(), 1.0 - d)   # exact where θ = θ_ema (a frozen weight)
        self.updates += 1

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> nn.Module:
        """Load the averaged weights into ``module`` (cast to its dtypes)."""
        missing = set(dict(module.named_parameters())) ^ set(self.shadow)
        if missing:
            raise ValueError(f"EMA and module parameters differ: {sorted(missing)[:5]}")
        for name, p in module.named_parameters():
            p.copy_(self.shadow[name].to(p.dtype))
        return module

    def state_dict(self) -> dict:
        return {"decay": self.decay, "updates": self.updates, "shadow": {k: v.clone() for k, v in self.shadow.items()}}

    def load_state_dict(self, state: dict) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise ValueError("EMA state is from a different model (parameter names differ)")
        self.decay, self.updates = float(state["decay"]), int(state["updates"])
        self.shadow = {k: v.float().clone() for k, v in state["shadow"].items()}
