"""Hand-built models whose behaviour under attack is known exactly."""
import textwrap

import torch
import torch.nn.functional as F
from torch import nn


class LinearEmbedder(nn.Module):
    """FR model: a fixed linear map of the flattened image, L2-normalised."""

    def __init__(self, in_features: int, dim: int = 8, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(dim, in_features, generator=g) / in_features**0.5, requires_grad=False)

    def forward(self, x):
        return F.normalize(x.flatten(1) @ self.weight.T, dim=1)


class LinearLiveness(nn.Module):
    """FAS model: liveness logit = w . x + b."""

    def __init__(self, w: torch.Tensor, b: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(w.flatten(), requires_grad=False)
        self.b = b

    def forward(self, x):
        return x.flatten(1) @ self.w + self.b


def linear_spoof(n: int = 32, seed: int = 0):
    """(model, x, task): spoof-to-live on a LinearLiveness model whose bias makes every one of the `n` frames
    start as spoof."""
    from bench.tasks import SpoofTask

    g = torch.Generator().manual_seed(seed)
    w = torch.randn(3, 8, 8, generator=g)
    x = torch.rand(n, 3, 8, 8, generator=g) * 0.6 + 0.2
    model = LinearLiveness(w, b=0.0)
    model.b = float(-model(x).max()) - 0.5  # every sample starts as spoof
    return model, x, SpoofTask(model, 0.0, "spoof-to-live", n)


class LinearClassTask:
    """A closed-set classification task on a linear model (logits = x W^T): the goal is any wrong class.

    Stands in for an identification goal that exposes several class scores; it implements the
    optional `num_targets` / `retarget` hook so targeted attacks can aim at each other class in turn.
    """

    goal = "misidentify"
    threshold = 0.0

    def __init__(self, weight: torch.Tensor, labels: torch.Tensor, target: "torch.Tensor | None" = None,
                 bias: "torch.Tensor | None" = None) -> None:
        self.weight, self.labels, self.target = weight, labels, target
        self.bias = torch.zeros(weight.shape[0]) if bias is None else bias

    def __len__(self) -> int:
        return self.labels.shape[0]

    def scores(self, x):
        return x.flatten(1) @ self.weight.T + self.bias

    def margin_from_scores(self, s):
        true = s.gather(1, self.labels[:, None]).squeeze(1)
        if self.target is not None:
            return s.gather(1, self.target[:, None]).squeeze(1) - true
        other = s.scatter(1, self.labels[:, None], float("-inf")).max(1).values
        return other - true

    def success_from_scores(self, s):
        return s.argmax(1) != self.labels

    def subset(self, index):
        return LinearClassTask(self.weight, self.labels[index], None if self.target is None else self.target[index], self.bias)

    def margin(self, x):
        return self.margin_from_scores(self.scores(x))

    def success(self, x):
        with torch.no_grad():
            return self.success_from_scores(self.scores(x))

    def num_targets(self) -> int:
        return self.weight.shape[0] - 1

    def retarget(self, clean_scores, rank):
        order = clean_scores.scatter(1, self.labels[:, None], float("-inf")).argsort(1, descending=True)
        return LinearClassTask(self.weight, self.labels, order[:, rank], self.bias)


SMALL_USER_EMBEDDER = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from torch import nn


    class Embedder(nn.Module):
        def __init__(self, seed=0):
            super().__init__()
            g = torch.Generator().manual_seed(seed)
            self.proj = nn.Linear(3 * 8 * 8, 16)
            self.proj.weight.data = torch.randn(16, 3 * 8 * 8, generator=g) / 14
            self.proj.bias.data.zero_()

        def forward(self, x):
            return F.normalize(self.proj(F.adaptive_avg_pool2d(x, 8).flatten(1) - 0.5), dim=1)


    def build():
        return Embedder()
''')
"""A user model file (`build()` -> a seeded linear embedder of 8x8-pooled images) for runs through the CLI and the runner."""
