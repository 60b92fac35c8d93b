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


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_headless(notebook, runs_dir, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    from tests.dataset_files import write_cifar10

    write_cifar10(tmp_path / "cifar")
    monkeypatch.setenv("MWA_RUNS_DIR", str(runs_dir))
    monkeypatch.setenv("MWA_REPORT_DIR", str(tmp_path / "report"))
    monkeypatch.setenv("MWA_CIFAR10_DIR", str(tmp_path / "cifar"))
    monkeypatch.setenv("MWA_CHECKPOINT", str(next(runs_dir.rglob("last.ckpt"))))
    monkeypatch.setenv("MWA_BENCH_DIR", str(tmp_path / "bench"))
    monkeypatch.setenv("MWA_SCALING_TOKENS", "256")
    monkeypatch.setenv("MWA_SCALING_REPEATS", "1")
    monkeypatch.setenv("MWA_SCALING_MEMORY", "0")
    nb = nbformat.read(notebook, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
    ).execute()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if "image/png" in o.get("data", {})]
    assert images, "the notebook drew nothing"
