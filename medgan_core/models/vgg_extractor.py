"""The CheXpert write-up's VGG-style extractor-classifier, split at a feature map for the feature GAN.

Step 1 of the write-up trains this CNN on the imbalanced X-rays; step 2 synthesises its
intermediate *feature maps* and trains only the layers after the split on real and generated
features (:mod:`medgan_core.models.feature_gan`). Every convolution is 3x3 with padding 1,
followed by batch norm and leaky ReLU (slope 0.2); ``M`` is a 2x2 max pool. With ``w`` the
width (64 in the write-up) the layers are

    extractor (deep split):  w, w, M, 2w, 2w, M, 2w, 2w, 4w, M, 4w, 4w, 8w, M    -> `(N, 8w, S/16, S/16)`
    head:                    8w, 8w, 8w, M, FC 64w, FC 8w, FC K                   -> `(N, K)` logits

so at 160 px and full width the features are `(N, 512, 10, 10)` and the head ends in FC 4096,
FC 512, FC 6 (the write-up's layers 16 to 23). The write-up's own suggestion against deep
512-channel features that overfit, a *shallower* split, is ``split="shallow"``: the extractor
ends after the third pool (`(N, 4w, S/8, S/8)`, 20x20x256 at full size) and the head starts with
the fourth stage (``4w, 4w, 8w, M``) before the layers above. The weights are the same network
either way; only where it is cut changes.

The loss is the cross-entropy of the logits, ``L = -1/n sum_i w_{y_i} log softmax(h(f(x_i)))_{y_i}``.
Input: ``(N, C, S, S)`` in [-1, 1] with ``S`` divisible by 32 (five pools). Built by name with the
study's other classifiers: ``build_classifier("vgg_feature", 1, 6, width=8, image_size=160, split="deep")``
(:mod:`medgan_core.models.classifier`), so the utility harness and ``fit_classifier`` train it as they do the small CNN.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import Tensor, nn

# The write-up's layers as multiples of the width; "M" is a 2x2 max pool.
STAGES: tuple[tuple, ...] = ((1, 1, "M"), (2, 2, "M"), (2, 2, 4, "M"), (4, 4, 8, "M"), (8, 8, 8, "M"))
SPLITS = {"shallow": 3, "deep": 4}  # stages in the extractor; the rest (and the FC layers) form the head
FC = (64, 8)  # the head's hidden FC layers as multiples of the width (4096 and 512 at width 64)


def _stage(c_in: int, spec: tuple, width: int) -> tuple[nn.Sequential, int]:
    """One stage: conv 3x3 -> BN -> leaky ReLU per number in ``spec``, then a max pool."""
    layers: list[nn.Module] = []
    for item in spec:
        if item == "M":
            layers.append(nn.MaxPool2d(2))
            continue
        c_out = int(item) * width
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)]
        c_in = c_out
    return nn.Sequential(*layers), c_in


class VGGFeatureClassifier(nn.Module):
    """The write-up's extractor-classifier: ``features(x)`` (the map the GAN learns) and ``head(f)``.

    Args:
        in_channels: 1 (grayscale X-rays) or 3.
        num_classes: ``K`` (6 in the write-up).
        width: ``w``, the channels of the first convolution (64 in the write-up; smaller on CPU).
        image_size: side ``S`` of the input, divisible by 32.
        split: ``"deep"`` (features after the fourth pool, the write-up's) or ``"shallow"`` (after the third).
        dropout: dropout before each hidden FC layer (0: none).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 6, width: int = 64, image_size: int = 160,
                 split: str = "deep", dropout: float = 0.0) -> None:
        super().__init__()
        if in_channels not in (1, 3) or num_classes < 2 or width < 1:
            raise ValueError(f"need in_channels 1 or 3, num_classes >= 2 and width >= 1; got {in_channels}, "
                             f"{num_classes}, {width}.")
        if image_size < 32 or image_size % 32:
            raise ValueError(f"image_size must be a multiple of 32 (five 2x2 pools), got {image_size}; the write-up "
                             "uses 160.")
        if split not in SPLITS:
            raise ValueError(f"split must be one of {sorted(SPLITS)}, got {split!r}.")
        self.in_channels, self.num_classes, self.image_size, self.split = in_channels, num_classes, image_size, split
        self.width, self.dropout = width, dropout
        stages, c = [], in_channels
        for spec in STAGES:
            stage, c = _stage(c, spec, width)
            stages.append((stage, c))
        n = SPLITS[split]
        self.extractor = nn.Sequential(*(s for s, _ in stages[:n]))
        self.feature_channels = stages[n - 1][1]
        self.feature_size = image_size // 2 ** n
        side = image_size // 2 ** len(STAGES)
        hidden = [f * width for f in FC]
        fcs: list[nn.Module] = [nn.Flatten()]
        for h_in, h_out in zip([c * side * side, *hidden], hidden):
            fcs += [nn.Dropout(dropout), nn.Linear(h_in, h_out), nn.BatchNorm1d(h_out), nn.LeakyReLU(0.2)]
        fcs.append(nn.Linear(hidden[-1], num_classes))
        self.head = nn.Sequential(*(s for s, _ in stages[n:]), *fcs)

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """`(C, S_f, S_f)` of :meth:`features`: `(8w, S/16, S/16)` deep, `(4w, S/8, S/8)` shallow."""
        return self.feature_channels, self.feature_size, self.feature_size

    def features(self, x: Tensor) -> Tensor:
        """The feature map at the split.

        Args:
            x: images `(N, C, S, S)` in [-1, 1].

        Returns:
            `(N, *feature_shape)`.
        """
        if x.ndim != 4 or x.shape[1] != self.in_channels or x.shape[2] != self.image_size:
            raise ValueError(f"expected input (N, {self.in_channels}, {self.image_size}, {self.image_size}), got "
                             f"{tuple(x.shape)}; resize the images with images_to_tensor(..., size={self.image_size}).")
        return self.extractor(x)

    def forward(self, x: Tensor) -> Tensor:
        """Class logits `(N, K)` of images `(N, C, S, S)`."""
        return self.head(self.features(x))

    def resplit(self, split: str) -> "VGGFeatureClassifier":
        """The same trained network (a copy of its weights and batch-norm statistics) cut at ``split``.

        ``net.resplit("shallow").features(x)`` is the map after the third pool of the network trained
        with the deep split; its ``head`` then starts with the fourth stage. Logits are unchanged.
        """
        out = self._sibling(split)
        for new, old in zip([*out.extractor, *out.head], [*self.extractor, *self.head]):
            new.load_state_dict(copy.deepcopy(old.state_dict()))
        return out.to(next(self.parameters()).device).train(self.training)

    def fresh_head(self) -> nn.Sequential:
        """A newly initialised head of this network's shape and split, for training on its features.

        Initialised from torch's global generator: seed it first (the utility harness does, per run).
        """
        return self._sibling(self.split).head

    def _sibling(self, split: str) -> "VGGFeatureClassifier":
        """A newly initialised network of this one's settings, cut at ``split``."""
        return VGGFeatureClassifier(self.in_channels, self.num_classes, self.width, self.image_size, split, self.dropout)


@torch.no_grad()
def extract_features(net: VGGFeatureClassifier, x: Tensor, batch_size: int = 256) -> Tensor:
    """The feature maps of images at the network's split, in eval mode, in batches.

    Args:
        net: a (trained) :class:`VGGFeatureClassifier`; its mode is restored afterwards.
        x: images `(N, C, S, S)` in [-1, 1].
        batch_size: images per forward pass.

    Returns:
        float32 `(N, *net.feature_shape)` on the CPU.
    """
    was_training = net.training
    net.eval()
    dev = next(net.parameters()).device
    try:
        parts = [net.features(x[i:i + batch_size].to(dev)).float().cpu() for i in range(0, len(x), batch_size)]
    finally:
        net.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0, *net.feature_shape)


def pool_features(f: Tensor | np.ndarray) -> np.ndarray:
    """The spatial mean of every channel: feature maps `(N, C, H, W)` -> float64 `(N, C)`.

    The space in which experiment 03 measures FID, KID and precision/recall of feature maps (as
    Inception's average pool does for the usual FID); its C2ST sees the whole flattened maps.
    """
    f = f.detach().cpu().numpy() if isinstance(f, Tensor) else np.asarray(f)
    if f.ndim != 4:
        raise ValueError(f"expected feature maps (N, C, H, W), got shape {f.shape}.")
    return f.mean(axis=(2, 3)).astype(np.float64)

