"""The run folder: names, states, the same-config rule, cleanup after a failed setup."""

import pytest
import yaml

from mwa_lightning.training.runs import (
    CHECKPOINTS,
    CONFIG_FILE,
    FINISHED,
    LAST_CKPT,
    RunFolderError,
    check_run_name,
    check_same_run,
    config_differences,
    flatten,
    is_folder_name,
    remove_new_run_folder,
    run_state,
    seed_run_name,
)


@pytest.mark.parametrize("name", ["seed0", "lr=1e-3", "a.b+c_d-e", "0"])
def test_usable_names(name):
    assert is_folder_name(name)
    check_run_name(name)


@pytest.mark.parametrize("name", ["", "../x", "a/b", "-x", ".hidden", "a b", "x;rm"])
def test_unusable_names_are_refused_naming_them(name):
    assert not is_folder_name(name)
    with pytest.raises(RunFolderError, match="is not a usable folder name"):
        check_run_name(name)


def test_seed_runs_are_named_by_the_seed():
    assert seed_run_name(3) == "seed3" and is_folder_name(seed_run_name(3))


def test_states_follow_the_files(tmp_path):
    assert run_state(tmp_path) == "todo"
    (tmp_path / CHECKPOINTS).mkdir()
    (tmp_path / CHECKPOINTS / LAST_CKPT).write_bytes(b"")
    assert run_state(tmp_path) == "partial"
    (tmp_path / FINISHED).write_text("{}")
    assert run_state(tmp_path) == "done"


def test_flatten_and_differences_ignore_the_checkpoint_path():
    a = {"model": {"lr": 1e-3, "mixer": {"class_path": "x"}}, "ckpt_path": "a.ckpt", "empty": {}}
    b = {"model": {"lr": 2e-3, "mixer": {"class_path": "x"}}, "ckpt_path": "b.ckpt", "empty": {}}
    assert flatten(a) == {"model.lr": 1e-3, "model.mixer.class_path": "x", "ckpt_path": "a.ckpt", "empty": {}}
    assert config_differences(a, b) == ["model.lr"]


def test_a_folder_of_another_config_is_refused_naming_the_keys(tmp_path):
    (tmp_path / CONFIG_FILE).write_text(yaml.safe_dump({"model": {"lr": 1e-3}, "seed_everything": 0}))
    check_same_run(tmp_path, {"model": {"lr": 1e-3}, "seed_everything": 0})  # the same: accepted
    check_same_run(tmp_path / "new", {"model": {"lr": 5.0}})  # no saved config: accepted
    with pytest.raises(RunFolderError, match=r"differs in: model.lr, seed_everything"):
        check_same_run(tmp_path, {"model": {"lr": 2e-3}, "seed_everything": 1})


def test_removing_a_new_run_folder_keeps_what_else_is_there(tmp_path):
    save_dir = tmp_path / "logs"
    run = save_dir / "study" / "variant" / "seed0"
    run.mkdir(parents=True)
    (run / CONFIG_FILE).write_text("x: 1\n")
    other = save_dir / "study" / "other"
    other.mkdir()
    remove_new_run_folder(run, save_dir)
    assert not (save_dir / "study" / "variant").exists()  # left empty: removed
    assert other.is_dir() and save_dir.is_dir()  # a sibling run and the save folder stay
