import h5py
import numpy as np
import pytest

from bench.errors import StoreError
from bench.store import SCHEMA_VERSION, CellResult, ResultsStore


def _cell(cid="c1", n=5):
    rng = np.random.default_rng(0)
    arrays = {
        "sample_id": np.asarray([f"s{i}" for i in range(n)], dtype=object),
        "clean_score": rng.normal(size=n).astype(np.float32),
        "adv_score": rng.normal(size=n).astype(np.float32),
        "clean_correct": rng.uniform(size=n) > 0.3,
        "attacked": rng.uniform(size=n) > 0.3,
        "success": rng.uniform(size=n) > 0.5,
        "linf": rng.uniform(size=n).astype(np.float32),
        "l2": rng.uniform(size=n).astype(np.float32),
        "queries": rng.integers(0, 10, size=n),
    }
    config = {"model": "m", "goal": "dodging", "attack": "pgd", "norm": "linf", "eps": 8 / 255, "params": {"steps": 10}}
    return CellResult(cid, config, arrays, {"asr": 0.5, "n": n}, {"run_id": "r"})


def test_round_trip(store_path):
    st = ResultsStore(store_path)
    run_id = st.begin_run({"model": "m", "protocol": "p", "suite": "s", "config": {"a": 1}})
    cell = _cell()
    st.write_cell(cell)
    st.add_cell_to_run(run_id, cell.cell_id)
    st.finish_run(run_id, "complete")
    reopened = ResultsStore(store_path)
    run = reopened.run()
    assert run["run_id"] == run_id and run["status"] == "complete" and run["cell_ids"] == ["c1"]
    back = reopened.read_cells(["c1"])[0]
    for name, arr in cell.arrays.items():
        assert np.array_equal(back.arrays[name], arr), name
    assert back.config == cell.config
    assert back.summary["asr"] == 0.5
    assert reopened.has_cell("c1") and not reopened.has_cell("c2")


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(StoreError, match="does not exist"):
        ResultsStore(tmp_path / "nope" / "x.h5").check_writable()


def test_non_hdf5_file_is_refused_and_untouched(tmp_path):
    p = tmp_path / "x.h5"
    p.write_text("not a store")
    with pytest.raises(StoreError, match="not an HDF5 file"):
        ResultsStore(p).check_writable()
    with pytest.raises(StoreError):
        ResultsStore(p).begin_run({"model": "m"})
    assert p.read_text() == "not a store"


def test_newer_schema_is_refused(store_path):
    with h5py.File(store_path, "w") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    before = store_path.read_bytes()
    with pytest.raises(StoreError, match="newer"):
        ResultsStore(store_path).begin_run({"model": "m"})
    assert store_path.read_bytes() == before


def test_foreign_hdf5_is_refused(store_path):
    with h5py.File(store_path, "w") as f:
        f.create_dataset("x", data=[1, 2])
    with pytest.raises(StoreError, match="not a facebench store"):
        ResultsStore(store_path).runs()
