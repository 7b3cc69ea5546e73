"""Time the project's DCGAN training step against a plain PyTorch loop, side by side in one process.

    .venv/bin/python scripts/bench_step.py --width 32 --image-size 32 --batch 64 --steps 60

Both loops train the same networks (built by the registry, copied for the plain loop) on the same
random batch with the same optimiser settings; the plain loop is the textbook DCGAN update (one
fake batch per step, D on it detached, G through it). They alternate in rounds so that both see
the same machine state; the script prints the median seconds per step of each and their ratio
(project / plain: 1.00 means no overhead). A benchmark, not a test: its numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from medgan_core.models.registry import build_gan
from medgan_core.train import ImageBatches, set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=32, help="generator and discriminator width")
    parser.add_argument("--image-size", type=int, default=32, help="image side in pixels")
    parser.add_argument("--batch", type=int, default=64, help="images per step")
    parser.add_argument("--steps", type=int, default=60, help="timed steps per round and loop")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: every available core)")
    args = parser.parse_args()
    threads = set_threads(args.threads)
    gan = build_gan("dcgan", image_size=args.image_size, nz=64, width_G=args.width, width_D=args.width, seed=0)
    images = torch.rand(args.batch, 3, args.image_size, args.image_size) * 2 - 1
    data = ImageBatches(images, None, batch_size=args.batch, seed=0)
    net_G, net_D = copy.deepcopy(gan.net_G), copy.deepcopy(gan.net_D)
    opt_G = torch.optim.Adam(net_G.parameters(), 2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(net_D.parameters(), 2e-4, betas=(0.5, 0.999))

    def plain(step: int) -> None:
        x_real = data.batch(step)[0]
        x_fake = net_G(torch.randn(args.batch, 64))
        loss_D = F.softplus(-net_D(x_real)).mean() + F.softplus(net_D(x_fake.detach())).mean()
        opt_D.zero_grad(set_to_none=True)
        loss_D.backward()
        opt_D.step()
        loss_G = F.softplus(-net_D(x_fake)).mean()
        opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        opt_G.step()

    timings: dict[str, list[float]] = {"project": [], "plain": []}
    for step in range(3):  # warm-up
        gan.train_step(data, step)
        plain(step)
    for _ in range(args.rounds):
        for name, fn in (("project", lambda s: gan.train_step(data, s)), ("plain", plain)):
            start = time.perf_counter()
            for step in range(args.steps):
                fn(step)
            timings[name].append((time.perf_counter() - start) / args.steps)
    project, reference = statistics.median(timings["project"]), statistics.median(timings["plain"])
    print(f"DCGAN-{args.image_size}, width {args.width}, batch {args.batch}, {threads} thread(s): "
          f"project {project * 1000:.1f} ms/step, plain loop {reference * 1000:.1f} ms/step, "
          f"ratio {project / reference:.2f} (project / plain)")


if __name__ == "__main__":
    main()
