"""The committed configs: every experiment, ablation and overlay parses, builds and means what it says."""

from pathlib import Path

import pytest
import yaml
from lightning.pytorch.strategies import DDPStrategy

from mwa_lightning.data import ClassificationDataModule
from mwa_lightning.models import MultiscaleWaveletAttention
from mwa_lightning.training.classifier import Classifier
from tests.helpers import ROOT, instantiate, resolved

CONFIGS = ROOT / "configs"
MWA_BASELINE = CONFIGS / "baselines" / "cifar10" / "mwa.yaml"
ABLATIONS = sorted((CONFIGS / "ablations").glob("*.yaml"))  # overlays on the MWA baseline
EXPERIMENTS = sorted(
    p for p in CONFIGS.rglob("*.yaml") if p not in ABLATIONS and "experiment" in (yaml.safe_load(p.read_text()) or {})
)
OVERLAYS = sorted((CONFIGS / "overlays").glob("*.yaml"))
TRAINER_OVERLAYS = [o for o in OVERLAYS if "trainer" in yaml.safe_load(o.read_text())]  # DDP, multi-node, SLURM
DATA_OVERLAYS = [o for o in OVERLAYS if o not in TRAINER_OVERLAYS]  # another dataset under the same recipe
STUDIES = sorted((CONFIGS / "studies").glob("*.yaml"))


def _config_refs(path: Path) -> set[Path]:
    """The config files ``path`` includes, recursively (values ending in .yaml, relative to its folder)."""

    def leaves(tree):
        if isinstance(tree, dict):
            for value in tree.values():
                yield from leaves(value)
        elif isinstance(tree, list):
            for value in tree:
                yield from leaves(value)
        else:
            yield tree

    # a study's paths are relative to the repository root, everything else's to its own folder
    base = ROOT if path.parent.name == "studies" else path.parent
    refs = {(base / v).resolve() for v in leaves(yaml.safe_load(path.read_text())) if str(v).endswith(".yaml")}
    for ref in list(refs):
        if ref.is_file():
            refs |= _config_refs(ref)
    return refs


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: str(p.relative_to(CONFIGS)))
def test_every_experiment_config_parses_and_instantiates(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = instantiate("--config", str(config))
    assert isinstance(cli.model, Classifier) and isinstance(cli.datamodule, ClassificationDataModule)
    assert cli.model.hparams.num_classes == cli.datamodule.num_classes  # linked, not written twice
    data, net = cli.datamodule, cli.model.net  # the input's size and channels: linked too
    assert net.input_shape[0] == data.in_chans and net.input_shape[-1] == (data.seq_len or data.image_size)
    assert cli.config.experiment == yaml.safe_load(config.read_text())["experiment"]


@pytest.mark.parametrize("ablation", ABLATIONS, ids=lambda p: p.stem)
def test_an_ablation_is_the_mwa_baseline_plus_exactly_its_own_options(ablation, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = resolved("--config", str(MWA_BASELINE))
    stacked = resolved("--config", str(MWA_BASELINE), "--config", str(ablation))
    written = yaml.safe_load(ablation.read_text())
    options = written["model"]["mixer"]["init_args"]
    assert stacked["experiment"] == written["experiment"]
    assert stacked["model"]["mixer"]["init_args"] == {**base["model"]["mixer"]["init_args"], **options}
    for section in ("trainer", "data"):
        assert stacked[section] == base[section]
    assert {k: v for k, v in stacked["model"].items() if k != "mixer"} == {
        k: v for k, v in base["model"].items() if k != "mixer"
    }
    cli = instantiate("--config", str(MWA_BASELINE), "--config", str(ablation))
    mixer = cli.model.net.blocks[0].mixer
    assert isinstance(mixer, MultiscaleWaveletAttention)


@pytest.mark.parametrize("overlay", [o for o in TRAINER_OVERLAYS if o.name != "slurm.yaml"], ids=lambda p: p.name)
def test_trainer_overlays_stack_on_an_experiment(overlay, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = yaml.safe_load(overlay.read_text())["trainer"]
    args = ["--config", str(MWA_BASELINE), "--config", str(overlay)]
    if settings.get("accelerator") == "gpu":  # check the wiring on this CPU: one process, gloo
        args += ["--trainer.accelerator", "cpu", "--trainer.devices", "1"]
    cli = instantiate(*args)
    assert cli.trainer.max_epochs == 300 and cli.trainer.gradient_clip_val == 1.0  # the experiment's settings stay
    if "strategy" in settings:
        assert isinstance(cli.trainer.strategy, DDPStrategy)
    if "num_nodes" in settings:
        assert cli.trainer.num_nodes == settings["num_nodes"]
    if "precision" in settings:
        assert cli.trainer.precision == settings["precision"]


@pytest.mark.parametrize("overlay", DATA_OVERLAYS, ids=lambda p: p.name)
def test_data_overlays_swap_only_the_data_of_the_fair_recipe(overlay, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = resolved("--config", str(CONFIGS / "cifar10_fair.yaml"))
    swapped = resolved("--config", str(CONFIGS / "cifar10_fair.yaml"), "--config", str(overlay))
    wanted = yaml.safe_load(overlay.read_text())["data"]
    assert set(yaml.safe_load(overlay.read_text())) == {"data"}
    assert swapped["data"]["class_path"] == wanted["class_path"] != base["data"]["class_path"]
    for key, value in wanted["init_args"].items():
        got = swapped["data"]["init_args"][key]
        assert {k: got[k] for k in value} == value if isinstance(value, dict) else got == value, key
    # everything else is the recipe's: the model, the trainer, the augmentation, the split seed
    assert swapped["model"] == base["model"] and swapped["trainer"] == base["trainer"]
    kept = {k: v for k, v in base["data"]["init_args"].items() if k not in wanted["init_args"]}
    assert all(swapped["data"]["init_args"][k] == v for k, v in kept.items())
    augment = {
        k: v for k, v in base["data"]["init_args"]["augment"].items() if k not in wanted["init_args"].get("augment", {})
    }
    assert all(swapped["data"]["init_args"]["augment"][k] == v for k, v in augment.items())  # the recipe's


def test_every_yaml_is_an_experiment_an_ablation_an_overlay_a_study_or_included():
    roots = [*EXPERIMENTS, *ABLATIONS, *OVERLAYS, *STUDIES]
    included = set().union(*(_config_refs(p) for p in roots))
    included |= set((CONFIGS / "shared" / "model").glob("*.yaml"))  # inputs of `make configs`, inlined
    orphans = set(CONFIGS.rglob("*.yaml")) - set(roots) - included
    assert not orphans, f"configs nothing uses: {sorted(map(str, orphans))}"
    for path in included:
        assert path.is_file(), f"a config includes {path}, which does not exist"


@pytest.mark.parametrize("dataset", ["cifar10", "tiny_imagenet"])
def test_paper_configs_show_precision_learning_rate_rule_and_augmentation(dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = resolved("--config", str(CONFIGS / "baselines" / dataset / "mwa.yaml"))
    assert config["trainer"]["precision"] == "bf16-mixed" and config["trainer"]["benchmark"] is True
    assert config["float32_matmul_precision"] == "high"
    model = config["model"]
    assert (model["lr"], model["lr_base_batch"], model["warmup_lr"], model["min_lr"]) == (5e-4, 512, 1e-6, 1e-5)
    augment = config["data"]["init_args"]["augment"]
    assert augment["randaugment_ops"] == 2 and augment["randaugment_magnitude"] == 9
    assert augment["randaugment_magnitude_std"] == 0.5 and augment["crop"] == "auto"
    assert (augment["mixup_alpha"], augment["cutmix_alpha"], augment["erasing_prob"]) == (0.8, 1.0, 0.0)
    cli = instantiate("--config", str(CONFIGS / "baselines" / dataset / "mwa.yaml"))
    size = cli.datamodule.image_size
    assert cli.datamodule.augment.crop_kind(size) == ("pad" if dataset == "cifar10" else "resized")
    assert cli.datamodule.eval_crop is (dataset != "cifar10")
    # every launch of a baseline runs at one precision: the DDP overlays no longer set their own
    for overlay in TRAINER_OVERLAYS:
        assert "precision" not in yaml.safe_load(overlay.read_text())["trainer"]
