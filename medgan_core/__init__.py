"""medgan_core: the thin core of the medgan study.

Everything a notebook calls that is more than a few lines lives here, once:

- ``medgan_core.data``         dataset readers (one file per dataset), splits and imbalance tools,
                               augmentations (``augment.py``), DICOM reader, nodule sequences
- ``medgan_core.losses``       every adversarial and auxiliary loss as pure ``d_*`` / ``g_*`` functions
- ``medgan_core.models``       one file per family (networks, builder, ``train_step``) and one registry
                               (``models.registry``: ``build_gan``, ``define_G``, ``define_D``, ``sample``)
- ``medgan_core.train``        seeding, device, checkpoints, EMA, guard, ``train_loop``; the one GAN trainer
                               (``trainer.train_gan``), run identity (``identity``) and cost (``cost``)
- ``medgan_core.metrics``      fidelity (FID/KID/PRDC with the real-vs-real reference), diversity,
                               memorisation, realism (C2ST), sequence and control metrics, the utility
                               harness, and ``stats``: every interval and test
- ``medgan_core.plots``        every figure
- ``medgan_core.experiments``  per write-up only: its numbers, who produced them, labels, verdict sentences
- ``medgan_core.results``      the one helper notebooks use to write ``metrics.json``
- ``medgan_core.runner`` / ``medgan_core.cli`` / ``medgan_core.report``  the ``medgan`` command
"""

__version__ = "0.1.0"
