"""The baseline configs are generated from configs/shared/ and are up to date."""

import pkgutil

import yaml

from mwa_lightning.models.mixers import mixer_class, mixer_names
from tests.helpers import ROOT

CONFIGS = ROOT / "configs"


def test_baselines_are_generated_for_every_dataset_and_mixer():
    from mwa_lightning.experiments.baselines import generate

    assert generate(CONFIGS, check=True) == [], "run `make configs`"
    datasets = {p.stem for p in (CONFIGS / "shared" / "data").glob("*.yaml")}
    assert {p.stem for p in (CONFIGS / "shared" / "mixer").glob("*.yaml")} == set(mixer_names())
    for name in mixer_names():
        shared = yaml.safe_load((CONFIGS / "shared" / "mixer" / f"{name}.yaml").read_text())
        assert pkgutil.resolve_name(shared["class_path"]) is mixer_class(name), f"{name}.yaml names another class"
        assert {p.parent.name for p in (CONFIGS / "baselines").glob(f"*/{name}.yaml")} == datasets
