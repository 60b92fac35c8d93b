"""A run folder records every model argument, so that the run is rebuilt from its folder alone."""

import torch
import yaml

from mwa_lightning.cli import main
from mwa_lightning.models import VisionTransformer
from mwa_lightning.models.vit import TRUNK_OPTIONS
from mwa_lightning.training.classifier import Classifier
from mwa_lightning.training.runs import RunFolderError, check_same_run
from tests.helpers import tiny_config


def trained_run(tmp_path):
    args = ["fit", "--config", str(tiny_config(tmp_path)), "--trainer.max_epochs", "1", "--run", "r"]
    main([*args, "--trainer.logger.init_args.save_dir", str(tmp_path)])
    return tmp_path / "tiny" / "r"


def test_config_yaml_holds_every_backbone_option(tmp_path):
    run = trained_run(tmp_path)
    model = yaml.safe_load((run / "config.yaml").read_text())["model"]
    for name in (*TRUNK_OPTIONS, "size", "patch_size"):
        assert name in model, name
    assert (model["mlp_ratio"], model["local_branch"], model["mixer_gelu"], model["block"]) == (
        4.0,
        False,
        False,
        "prenorm",
    )


def test_an_old_run_is_rebuilt_from_its_folder_after_a_default_changes(tmp_path, monkeypatch):
    run = trained_run(tmp_path)
    weights = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)["state_dict"]
    # the code's default MLP ratio changes after the run: its config.yaml still says 4.0
    defaults = list(VisionTransformer.__init__.__defaults__)
    names = [
        n for n in VisionTransformer.__init__.__code__.co_varnames[1 : VisionTransformer.__init__.__code__.co_argcount]
    ]
    defaults[names.index("mlp_ratio") - (len(names) - len(defaults))] = 2.0
    monkeypatch.setattr(VisionTransformer.__init__, "__defaults__", tuple(defaults))
    assert Classifier.backbone_defaults(sequence=False)["mlp_ratio"] == 2.0
    # as a user re-evaluates a run: its config and its checkpoint (loaded strictly: every shape the trained one's)
    cli = main(
        ["validate", "--config", str(run / "config.yaml"), "--ckpt_path", str(run / "checkpoints" / "last.ckpt")]
    )
    rebuilt = cli.model
    assert rebuilt.net.blocks[0].mlp[0].out_features == 4 * rebuilt.net.embed_dim
    assert all(torch.equal(value, rebuilt.state_dict()[key]) for key, value in weights.items())


def test_a_run_started_before_an_option_was_recorded_still_resumes(tmp_path):
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"model": {"lr": 1.0}}))
    added = {"model.mlp_ratio": 4.0, "keep_precision": False}
    check_same_run(tmp_path, {"model": {"lr": 1.0, "mlp_ratio": 4.0}, "keep_precision": False}, added)
    try:  # an added option set to something else than its default is a change
        check_same_run(tmp_path, {"model": {"lr": 1.0, "mlp_ratio": 2.0}}, added)
    except RunFolderError as e:
        assert "model.mlp_ratio" in str(e)
    else:
        raise AssertionError("a changed option was taken as the old run's")
