"""``python -m mwa_lightning ...``: the same as the ``mwa-lightning`` command (:mod:`mwa_lightning.tools`)."""

from mwa_lightning.tools import entry_point

if __name__ == "__main__":
    entry_point()
