"""The run folder: names, states, the same-config rule, cleanup after a failed setup."""

import ast
import subprocess
import sys

import pytest
import yaml

from mwa_lightning.training.runs import (
    CHECKPOINTS,
    CONFIG_FILE,
    FINISHED,
    LAST_CKPT,
    VOLATILE_KEYS,
    RunFolderError,
    RunState,
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
    assert run_state(tmp_path) is RunState.DONE and run_state(tmp_path) == "done"  # a str: prints and compares


def test_no_module_spells_a_run_state_as_a_string():
    """The states live in RunState alone: a comparison or a return of a bare ``"done"`` (the six literals the house
    issue found) is refused, so that renaming a state cannot leave a copy behind."""
    from tests.helpers import ROOT

    states = {state.value for state in RunState}
    found = []
    for path in (ROOT / "mwa_lightning").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            parts = [*node.comparators, node.left] if isinstance(node, ast.Compare) else []
            parts += [node.value] if isinstance(node, ast.Return) and node.value is not None else []
            found += [
                f"{path.name}:{node.lineno} {part.value!r}"
                for part in parts
                if isinstance(part, ast.Constant) and part.value in states
            ]
    assert found == [], found


def test_the_run_record_reads_without_torch():
    """The run folder's contract (states, volatile keys, config comparison) is what the study runner's parent
    process and the report read: importing it must not import torch or Lightning."""
    code = "import sys, mwa_lightning.training.runs; print(sorted({'torch', 'lightning'} & sys.modules.keys()))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr[-500:]


def test_the_volatile_keys_are_ignored_and_nothing_else():
    saved = {"seed_everything": 0, "run": "seed0", "trainer": {"precision": "bf16-mixed"}, "model": {"lr": 1e-3}}
    other_machine = {"seed_everything": 1, "run": "seed1", "trainer": {"precision": "32-true"}, "model": {"lr": 1e-3}}
    assert {"seed_everything", "run", "trainer.precision", "ckpt_path"} <= set(VOLATILE_KEYS)
    assert config_differences(saved, other_machine, ignore=VOLATILE_KEYS) == []
    other_machine["model"]["lr"] = 2e-3
    assert config_differences(saved, other_machine, ignore=VOLATILE_KEYS) == ["model.lr"]


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
