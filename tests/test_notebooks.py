import pytest

from tests.helpers import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_notebooks_are_stored_without_outputs():
    import nbformat

    assert {p.name for p in NOTEBOOKS} == {"inspect_runs.ipynb", "wavelet_tokens.ipynb", "complexity.ipynb"}
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert not cell.outputs and cell.execution_count is None, f"{path.name} holds outputs"


def test_notebook_markdown_has_no_literal_escapes():
    import nbformat

    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "markdown":
                assert "\\n" not in cell.source, f"{path.name}: a Markdown cell shows a literal \\n"


def _execute(notebook, allow_errors: bool = False):
    """The executed notebook, run as a user opens it (from notebooks/)."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        allow_errors=allow_errors,
        resources={"metadata": {"path": str(notebook.parent)}},
    ).execute()
    return nb


def _outputs(nb, kind: str) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == kind]


def _text(nb) -> str:
    return "".join(o.get("text", "") for o in _outputs(nb, "stream"))


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_headless(notebook, runs_dir, tmp_path, monkeypatch):
    from tests.dataset_files import write_cifar10

    write_cifar10(tmp_path / "cifar")
    monkeypatch.setenv("MWA_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("MWA_REPORT_DIR", str(tmp_path / "report"))
    monkeypatch.setenv("MWA_CIFAR10_DIR", str(tmp_path / "cifar"))
    monkeypatch.delenv("MWA_CHECKPOINT", raising=False)  # no checkpoint: wavelet_tokens shows an untrained model
    monkeypatch.setenv("MWA_BENCH_DIR", str(tmp_path / "bench"))
    monkeypatch.setenv("MWA_SCALING_TOKENS", "256")
    monkeypatch.setenv("MWA_SCALING_REPEATS", "1")
    nb = _execute(notebook)
    assert not _outputs(nb, "error")
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook drew nothing"
    if notebook.name == "wavelet_tokens.ipynb":
        assert "MWA_CHECKPOINT is not set: the token grids below are an UNTRAINED MWA model's" in _text(nb)


def test_inspect_runs_shows_a_committed_study_where_there_are_no_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("MWA_RUNS_DIR", str(tmp_path / "empty"))
    monkeypatch.setenv("MWA_STUDY", "is-it-the-wavelet")
    nb = _execute(ROOT / "notebooks" / "inspect_runs.ipynb")
    assert not _outputs(nb, "error")
    assert "the committed study in" in _text(nb) and "is-it-the-wavelet" in _text(nb)
    tables = [o["data"]["text/markdown"] for o in _outputs(nb, "display_data") if "text/markdown" in o.get("data", {})]
    committed = (ROOT / "results" / "is-it-the-wavelet" / "report.md").read_text()
    assert tables and tables[0].splitlines()[:4] == committed.splitlines()[:4]  # the committed table, read back


def test_wavelet_tokens_refuses_a_checkpoint_of_other_classes(runs_dir, tmp_path, monkeypatch):
    from tests.dataset_files import write_cifar10

    write_cifar10(tmp_path / "cifar")
    monkeypatch.setenv("MWA_CIFAR10_DIR", str(tmp_path / "cifar"))
    monkeypatch.setenv("MWA_CHECKPOINT", str(next(runs_dir.rglob("last.ckpt"))))  # a synthetic-task model
    nb = _execute(ROOT / "notebooks" / "wavelet_tokens.ipynb", allow_errors=True)
    error = _outputs(nb, "error")[0]  # the cells after it fail too, for want of the model
    assert error["ename"] == "ValueError" and "not CIFAR-10's: set MWA_CHECKPOINT to a CIFAR-10 run" in error["evalue"]
