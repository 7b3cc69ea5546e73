"""The networks, by family (one file each), and the one registry that builds them by name.

``from medgan_core.models import build_gan`` is :func:`medgan_core.models.registry.build_gan`.
"""

from medgan_core.models.registry import FAMILIES, GAN, GAN_NAMES, build_gan, define_D, define_G, sample

__all__ = ["FAMILIES", "GAN", "GAN_NAMES", "build_gan", "define_D", "define_G", "sample"]
