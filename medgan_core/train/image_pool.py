"""The image history buffer of CycleGAN (Zhu et al. 2017, sec. 4; Shrivastava et al. 2017).

The discriminator is updated with a mix of the newest generated images and older ones, which
damps oscillation. For each image of a batch: while the pool holds fewer than ``pool_size``
images, the image is stored and returned; afterwards, with probability 1/2 a random stored
image is returned and replaced by the new one, otherwise the new image is returned.

The pool draws from its own seeded generator, and its ``state_dict`` holds the stored images
and that generator's state, so a resumed run draws exactly what an uninterrupted one would.
"""

from __future__ import annotations

import torch


class ImagePool:
    """A buffer of up to ``pool_size`` previously generated images.

    Args:
        pool_size: how many images to keep; 0 disables the pool (``query`` returns its input).
        seed: seed of the pool's own random generator.
    """

    def __init__(self, pool_size: int = 50, seed: int = 0):
        if pool_size < 0:
            raise ValueError(f"pool_size must be >= 0, got {pool_size}.")
        self.pool_size = int(pool_size)
        self.images: list[torch.Tensor] = []  # each `(C, H, W)`, detached
        self.gen = torch.Generator().manual_seed(int(seed))

    def __len__(self) -> int:
        return len(self.images)

    @torch.no_grad()
    def query(self, x_fake: torch.Tensor) -> torch.Tensor:
        """Return a batch of the same shape mixing new and stored images.

        Args:
            x_fake: generated images, `(B, C, H, W)` (any shape with the batch first).
        """
        if self.pool_size == 0:
            return x_fake
        if self.images and x_fake.shape[1:] != self.images[0].shape:
            raise ValueError(f"ImagePool holds images of shape {tuple(self.images[0].shape)}, "
                             f"got a batch of {tuple(x_fake.shape[1:])}; use one pool per image size.")
        out = []
        for img in x_fake.detach():
            if len(self.images) < self.pool_size:
                self.images.append(img.clone())
                out.append(img)
            elif torch.rand((), generator=self.gen).item() < 0.5:
                i = int(torch.randint(self.pool_size, (), generator=self.gen).item())
                out.append(self.images[i].to(img.device))
                self.images[i] = img.clone()
            else:
                out.append(img)
        return torch.stack(out)

    def state_dict(self) -> dict:
        """Return the pool size, the stored images `(N, C, H, W)` and the generator state."""
        images = torch.stack(self.images).cpu() if self.images else torch.empty(0)
        return {"pool_size": self.pool_size, "images": images, "rng": self.gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        """Restore the pool from :meth:`state_dict`'s output.

        Args:
            state: a dict with keys ``pool_size``, ``images`` and ``rng``.
        """
        if int(state["pool_size"]) != self.pool_size:
            raise ValueError(f"Checkpointed pool has size {state['pool_size']}, this pool {self.pool_size}; "
                             "build the pool with the size used for training.")
        self.images = [img.clone() for img in state["images"]] if state["images"].numel() else []
        self.gen.set_state(state["rng"])
