"""Floating-point work split by what computes it: matrix products (linear layers,
convolutions) and attention's scores and weighted values. On a CPU PyTorch's fused attention
runs in bfloat16 at about its float32 rate while the products run several times faster
(docs/speed.md), so a run's time is reckoned from each part at its own measured rate. A
multiply-add is two floating-point operations. No PyTorch: Blender's process reads it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Flop:
    products: float = 0.0
    attention: float = 0.0

    @property
    def total(self) -> float:
        return self.products + self.attention

    def __add__(self, other: Flop) -> Flop:
        return Flop(self.products + other.products, self.attention + other.attention)

    def __radd__(self, other: int) -> Flop:  # sum() starts from 0
        if other != 0:
            return NotImplemented
        return self

    def __mul__(self, factor: float) -> Flop:
        return Flop(self.products * factor, self.attention * factor)

    __rmul__ = __mul__

    def seconds(self, products_rate: float, attention_rate: float) -> float:
        """At these rates in FLOP/s."""
        return self.products / products_rate + self.attention / attention_rate
