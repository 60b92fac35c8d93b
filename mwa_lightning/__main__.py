"""``python -m mwa_lightning ...``: the same as the ``mwa-lightning`` command (:mod:`mwa_lightning.cli`)."""

from mwa_lightning.cli import entry_point

if __name__ == "__main__":
    entry_point()
