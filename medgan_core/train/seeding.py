"""One seed for everything: Python, NumPy, torch (CPU and CUDA) and DataLoader workers.

A run is reproducible on CPU when every random draw comes from a seeded generator and every
kernel is deterministic. :func:`seed_everything` does both at the start of a notebook;
:func:`seed_worker` and :func:`dataloader_generator` carry the seed into a ``DataLoader``:

    g = seed_everything(seed)
    loader = DataLoader(ds, shuffle=True, num_workers=2,
                        worker_init_fn=seed_worker, generator=dataloader_generator(seed))

On a GPU the same code runs; cuDNN is put in deterministic mode, but some CUDA kernels have no
deterministic version, so GPU numbers agree only to within floating-point noise.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, deterministic: bool = True) -> torch.Generator:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device).

    Args:
        seed: the run's seed, a non-negative integer below ``2**32``.
        deterministic: also ask torch for deterministic kernels (``warn_only``: an op without a
            deterministic version warns instead of failing) and turn off cuDNN autotuning.

    Returns:
        A CPU ``torch.Generator`` seeded with ``seed``, for code that takes an explicit one.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**32:
        raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}.")
    seed = int(seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds the CPU generator and every CUDA device's
    if deterministic:
        # cuBLAS needs this set before its first use to be deterministic; harmless on CPU.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
    return dataloader_generator(seed)


def dataloader_generator(seed: int) -> torch.Generator:
    """Return a CPU ``torch.Generator`` seeded with ``seed`` (pass it as ``DataLoader(generator=...)``).

    Args:
        seed: the seed of the shuffling order.
    """
    gen = torch.Generator()
    gen.manual_seed(int(seed))
    return gen


def seed_worker(worker_id: int) -> None:
    """Seed Python and NumPy inside a ``DataLoader`` worker (pass as ``worker_init_fn``).

    torch already gives each worker the seed ``base_seed + worker_id``, where ``base_seed`` comes
    from the loader's generator; this copies that seed to ``random`` and ``numpy`` so that
    augmentations drawn with them are reproducible too (the recipe of torch's
    "Reproducibility" notes).

    Args:
        worker_id: the worker's index, given by the ``DataLoader``.
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)
