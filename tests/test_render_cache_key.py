"""The render cache key follows the rendering code only: not its docstrings or comments, not the protocols."""
import ast
import shutil
from pathlib import Path

import pytest

import bench.protocols
from bench.data.synth import export
from bench.protocols import PROTOCOLS, FRProtocol, register_protocol


def _key() -> str:
    export.renderer_fingerprint.cache_clear()
    return export.content_key(0, 64)


@pytest.fixture
def sources_copy(tmp_path, monkeypatch):
    """The fingerprinted modules copied to a temporary folder, which the fingerprint then reads instead."""
    copies = []
    for path in export.render_source_paths():
        copies.append(tmp_path / path.name)
        shutil.copy(path, copies[-1])
    monkeypatch.setattr(export, "render_source_paths", lambda: copies)
    export.renderer_fingerprint.cache_clear()
    yield {c.name: c for c in copies}
    export.renderer_fingerprint.cache_clear()


def _edit_docstrings(text: str) -> str:
    """`text` with its module docstring and its first function docstring reworded, and a comment added."""
    tree = ast.parse(text)
    function = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and ast.get_docstring(n))
    for doc in (ast.get_docstring(tree, clean=False), ast.get_docstring(function, clean=False)):
        assert doc and text.count(doc) >= 1
        text = text.replace(doc, doc.rstrip() + " Reworded, with more words.", 1)
    return text.replace("\nimport ", "\n# a comment, and a blank line\n\nimport ", 1)


def test_docstring_and_comment_edits_keep_the_key_code_edits_change_it(sources_copy):
    before = _key()
    for name, path in sources_copy.items():
        text = path.read_text()
        edited = _edit_docstrings(text)
        assert edited != text and ast.dump(ast.parse(edited)) != ast.dump(ast.parse(text))  # the docstrings did change
        path.write_text(edited)
        assert _key() == before, name
        path.write_text(edited + "\n_EDITED = 1\n")  # a code edit
        assert _key() != before, name
        path.write_text(text)
    assert _key() == before


def test_attribute_docstrings_do_not_count_either():
    text = 'X = 1\n"""What X is."""\n\n\ndef f():\n    """Doc."""\n    return X\n'
    reworded = text.replace("What X is.", "What X is, said otherwise.").replace("Doc.", "Other doc.")
    assert export.source_fingerprint(reworded) == export.source_fingerprint(text)
    assert export.source_fingerprint(text.replace("return X", "return X + 1")) != export.source_fingerprint(text)


def test_registering_a_protocol_keeps_the_key(monkeypatch):
    before = _key()
    monkeypatch.setattr(PROTOCOLS, "_entries", dict(PROTOCOLS._entries))  # the registry is restored afterwards
    register_protocol(FRProtocol(name="throwaway-fr", task="fr", description="a test protocol", threshold_rule="none"))
    assert "throwaway-fr" in PROTOCOLS
    assert _key() == before
    monkeypatch.undo()
    assert "throwaway-fr" not in PROTOCOLS


def test_protocol_modules_are_not_fingerprinted():
    fingerprinted = [p.resolve() for p in export.render_source_paths()]
    assert all(p.is_file() for p in fingerprinted)
    protocols_dir = Path(bench.protocols.__file__).resolve().parent
    assert not any(protocols_dir in p.parents for p in fingerprinted)
    assert {p.name for p in fingerprinted}.isdisjoint({"readback.py", "in_memory.py"})  # readers decide no pixel
    for path in fingerprinted:  # nor does any fingerprinted module reach a protocol
        tree = ast.parse(path.read_text())
        imported = [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        imported += [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        assert not [m for m in imported if m == "bench.protocols" or m.startswith("bench.protocols.")], path.name
