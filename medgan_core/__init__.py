"""medgan_core: the thin core of the medgan study.

Everything a notebook calls that is more than a few lines lives here:

- ``medgan_core.data``     dataset readers, splits, imbalance tools, DICOM reader
- ``medgan_core.models``   one file per model family
- ``medgan_core.losses``   adversarial and reconstruction losses (pure ``d_*`` / ``g_*`` functions)
- ``medgan_core.train``    seeding, device, checkpoint/resume, training-loop helpers
- ``medgan_core.metrics``  FID/KID/PRDC in a domain encoder's space, diversity, utility harness
- ``medgan_core.plots``    image grids, loss curves, metric plots
- ``medgan_core.runner`` / ``medgan_core.cli``  the ``medgan`` command
"""

__version__ = "0.1.0"
