import math
from dataclasses import dataclass

import numpy as np


@dataclass
class Circle:
    r: float

    @property
    def area(self) -> float:
        return math.pi * self.r ** 2


@dataclass
class Polygon:
    points: np.ndarray

    @property
    def area(self) -> float:
        x, y = self.points[:, 0], self.points[:, 1]
        return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))

    @property
    def perimeter(self) -> float:
        d = np.diff(np.vstack([self.points, self.points[:1]]), axis=0)
        return float(np.hypot(d[:, 0], d[:, 1]).sum())


def regular_polygon(n: int, r: float = 1.0) -> Polygon:
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return Polygon(np.c_[r * np.cos(t), r * np.sin(t)])
