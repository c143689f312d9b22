"""The order in which `make test`'s workers take the test modules (tests/scheduling.py)."""
import json

from tests.scheduling import MODULE_SECONDS, ModuleSeconds, longest_first, read_seconds


def test_modules_longest_first_whole_and_in_their_own_order():
    ids = ["tests/a.py::x", "tests/a.py::y", "tests/b.py::x", "tests/c.py::x", "tests/c.py::y", "tests/d.py::x",
           "tests/e.py::x"]
    seconds = {"tests/a.py": 5.0, "tests/b.py": 50.0, "tests/c.py": 10.0, "tests/e.py": 5.0}
    order = [ids[i] for i in longest_first(ids, seconds)]
    # b (50), c (10), d (not listed: the median, 7.5), then a and e (5 each: collected order)
    assert order == ["tests/b.py::x", "tests/c.py::x", "tests/c.py::y", "tests/d.py::x", "tests/a.py::x",
                     "tests/a.py::y", "tests/e.py::x"]
    assert longest_first(ids, {}) == list(range(len(ids)))  # nothing measured: the collected order


def test_seconds_merge_into_the_table_and_drop_modules_that_are_gone(tmp_path):
    (tmp_path / "tests").mkdir()
    for name in ("a.py", "b.py"):
        (tmp_path / "tests" / name).write_text("")
    path = tmp_path / "tests" / "module_seconds.json"
    recorded = ModuleSeconds()
    for nodeid, duration in (("tests/a.py::x", 1.25), ("tests/a.py::x", 2.0), ("tests/a.py::y", 0.5)):
        recorded.add(nodeid, duration)  # setup, call, teardown of x; then y
    recorded.write(path, merge_into={"tests/a.py": 99.0, "tests/b.py": 7.0, "tests/gone.py": 3.0})
    assert json.loads(path.read_text()) == {"tests/a.py": 3.8, "tests/b.py": 7.0}
    assert read_seconds(path) == {"tests/a.py": 3.8, "tests/b.py": 7.0}
    assert read_seconds(tmp_path / "missing.json") == {}


def test_the_shipped_table_names_only_test_modules_that_exist():
    table = read_seconds()
    root = MODULE_SECONDS.parent.parent
    assert table and all((root / m).is_file() and m.startswith("tests/test_") for m in table)
    assert all(s >= 0 for s in table.values())
