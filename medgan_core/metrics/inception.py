"""Optional Inception-v3 FID from a weights file the user supplies; nothing is ever downloaded.

Our headline FID uses the domain encoder (see ``metrics/fid.py``). Papers report FID in the
2048-d pool features of the TensorFlow Inception-v3 of 2015 ("inception-2015-12-05"). To put
that number beside ours, supply the TorchScript export of that network that NVIDIA publishes
with StyleGAN2-ADA, ``inception-2015-12-05.pt`` (clean-fid uses the same file):

    https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt

Fetch it on a machine with internet access and pass its path as ``weights_path``. Expected
format: a TorchScript module loadable by ``torch.jit.load`` whose ``forward(x, return_features=True)``
takes ``uint8``-valued images `(N, 3, H, W)` in [0, 255] of any size (it resizes to 299 px
internally) and returns pool features `(N, 2048)`. Grayscale images are repeated to 3 channels.

pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` is a plain state dict for an architecture
built from torchvision, which this project does not install, so it is not accepted; to use it,
wrap that model elsewhere in a module with the call convention above and export the wrapper
with ``torch.jit.script``.

Even with the right file, our sample sizes (hundreds of images) and medical images (far from
ImageNet) make this FID an indication only; see ``docs/metrics.md``.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from medgan_core.metrics.diversity import images_to_unit_tensor
from medgan_core.metrics.fid import fid_from_features

__all__ = ["INCEPTION_URL", "HOW_TO", "SKIP_NOTE", "load_inception", "inception_features", "inception_fid"]

INCEPTION_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
HOW_TO = ("To add it, download NVIDIA's TorchScript FID network inception-2015-12-05.pt "
          f"({INCEPTION_URL}) on a machine with internet access and pass its path as weights_path; "
          "nothing is downloaded at run time.")
SKIP_NOTE = "Inception-v3 FID not computed: no weights file given. " + HOW_TO


def load_inception(weights_path: str | Path) -> torch.jit.ScriptModule:
    """Load the TorchScript Inception-v3 FID network on the CPU, checking its call convention.

    Args:
        weights_path: path of ``inception-2015-12-05.pt`` (TorchScript; see the module docstring).

    Returns:
        The module in eval mode.
    """
    path = Path(weights_path)
    if not path.is_file():
        raise FileNotFoundError(f"Inception weights file not found: {path}. {HOW_TO}")
    try:
        with warnings.catch_warnings():  # TorchScript is deprecated, but it is the format this file comes in
            warnings.simplefilter("ignore", DeprecationWarning)
            model = torch.jit.load(str(path), map_location="cpu")
    except Exception as err:  # torch raises RuntimeError/ValueError/pickle errors depending on the bytes
        first_line = (str(err).splitlines() or [""])[0][:200]
        raise ValueError(f"{path} is not a TorchScript file ({type(err).__name__}: {first_line}). "
                         "Expected NVIDIA's TorchScript inception-2015-12-05.pt; pytorch-fid's .pth state dict "
                         "is not supported (it needs torchvision).") from err
    arg_names = [a.name for a in model.forward.schema.arguments]
    if "return_features" not in arg_names:
        raise ValueError(f"{path} loads, but its forward{tuple(arg_names[1:])} has no return_features argument: "
                         "it is not the inception-2015-12-05.pt FID network expected here.")
    return model.eval()


def inception_features(model: torch.jit.ScriptModule, images: np.ndarray | torch.Tensor,
                       batch_size: int = 64, device: str = "cpu") -> np.ndarray:
    """Pool features of the Inception FID network.

    Args:
        model: the module from :func:`load_inception`.
        images: uint8 `(N, H, W[, C])` or float `(N, C, H, W)` in [-1, 1].
        batch_size: images per forward pass.
        device: where to run the network (``"cpu"`` or ``"cuda"``).

    Returns:
        Features `(N, 2048)` as float64.
    """
    x = images_to_unit_tensor(images)  # `(N, C, H, W)` in [0, 1]
    if x.shape[1] == 1:
        x = x.repeat(1, 3, 1, 1)  # grayscale -> `(N, 3, H, W)`
    x = (x * 255.0).round().to(torch.uint8)  # the network expects [0, 255] values
    model = model.to(device)
    feats = []
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            out = model(x[start:start + batch_size].to(device), return_features=True)
            feats.append(out.reshape(out.shape[0], -1).double().cpu())
    return torch.cat(feats).numpy()


def inception_fid(images_a: np.ndarray | torch.Tensor, images_b: np.ndarray | torch.Tensor,
                  weights_path: str | Path | None, required: bool = False,
                  batch_size: int = 64, device: str = "cpu") -> tuple[float | None, str]:
    """Inception-v3 FID between two image sets if the weights file is there, else ``None`` and a note.

    Args:
        images_a: first image set (e.g. real training images), uint8 `(N, H, W[, C])` or float
            `(N, C, H, W)` in [-1, 1].
        images_b: second image set (e.g. generated images), same formats.
        weights_path: path of ``inception-2015-12-05.pt``; ``None`` skips.
        required: if True, a path that does not exist raises FileNotFoundError instead of skipping.
        batch_size: images per forward pass.
        device: where to run the network.

    Returns:
        ``(fid, note)``: the FID (``None`` when skipped) and a sentence for the report saying what
        was computed or how to supply the weights. A file that exists but is not the expected
        TorchScript network always raises ValueError.
    """
    if weights_path is None:
        return None, SKIP_NOTE
    path = Path(weights_path)
    if not path.is_file():
        if required:
            load_inception(path)  # raises FileNotFoundError with the how-to
        return None, f"Inception-v3 FID not computed: {path} does not exist. {HOW_TO}"
    model = load_inception(path)
    feats_a = inception_features(model, images_a, batch_size, device)
    feats_b = inception_features(model, images_b, batch_size, device)
    fid = fid_from_features(feats_a, feats_b)
    note = (f"Inception-v3 FID from {path.name} ({feats_a.shape[1]}-d pool features, n = {len(feats_a)} vs "
            f"{len(feats_b)}); small samples bias it upwards, so compare it only with papers that used similar n.")
    return fid, note
