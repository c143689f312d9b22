"""The commands and code shown in the documentation, extracted for tests/test_docs.py.

What counts as a shown command, in README.md and docs/*.md (any file added there is picked up):

- every line of a fenced code block tagged ```bash, ```sh, ```shell or ```zsh (comments, a `#!` line
  and blank lines aside), with `\\` line continuations joined and quoted strings kept whole
  (a `python -c "..."` may span lines);
- in ```console blocks and in untagged / ```text blocks: lines starting with `$ ` (the prompt is
  dropped), and lines starting with `facebench ` (a bare command in an untagged block; output lines
  never start with the program's name);
- the `run:` scripts of the steps of a ```yaml block that is a CI workflow (`jobs: ... steps:`).

A line may hold several commands (`a && b`, `a; b`, `a | b`, `a &`); each is one command. Leading
`NAME=value` words are the command's environment; `env`, `time`, `timeout N`, `nice` and
`taskset -c CPUS` wrappers are dropped, so `OMP_NUM_THREADS=1 taskset -c 0 python ...` is a `python`
command with `OMP_NUM_THREADS=1`. Words are split as the shell would (`shlex`), without expanding
variables or `~`.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

import yaml

ROOT = Path(__file__).resolve().parent.parent
SHELL_LANGS = {"bash", "sh", "shell", "zsh"}
PROMPT_LANGS = {"console", "shell-session"}
PLAIN_LANGS = {"", "text", "txt"}
PROGRAM = "facebench"

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_REDIRECT = re.compile(r"^(?:\d*|&)(?:>>|>|<)(?P<target>.*)$")
_KEYWORDS = {"do", "then", "else", "elif", "!", "{", "}"}
_SKIP_KEYWORDS = {"for", "while", "until", "done", "fi", "if", "case", "esac", "function"}


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every docs/*.md, sorted."""
    return [root / "README.md", *sorted((root / "docs").glob("*.md"))]


@dataclass(frozen=True)
class CodeBlock:
    path: Path
    line: int  # 1-based line of the first content line
    lang: str
    text: str  # content, with the fence's indentation removed

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}:{self.line}"


@dataclass(frozen=True)
class DocCommand:
    path: Path
    line: int
    text: str  # the command as written (continuations joined)
    argv: tuple[str, ...]  # words after the environment prefix and wrappers
    env: tuple[tuple[str, str], ...] = ()

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}:{self.line}"

    @property
    def program(self) -> str:
        return Path(self.argv[0]).name if self.argv else ""

    def __str__(self) -> str:
        return shlex.join(self.argv)


def code_blocks(path: Path) -> list[CodeBlock]:
    """The fenced code blocks of a markdown file (fences may be indented, e.g. inside a list item)."""
    lines = path.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        lang = m["info"].strip().split(" ")[0].lower() if m["info"].strip() else ""
        body, j = [], i + 1
        while j < len(lines):
            close = _FENCE.match(lines[j])
            if close and close["fence"][0] == fence[0] and len(close["fence"]) >= len(fence) and not close["info"].strip():
                break
            line = lines[j]
            strip = min(indent, len(line) - len(line.lstrip(" \t")))
            body.append(line[strip:])
            j += 1
        blocks.append(CodeBlock(path, i + 2, lang, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def split_shell(script: str, first_line: int = 1) -> Iterator[tuple[int, str]]:
    """Split a shell script into simple commands: (line number, text), comments removed.

    Newlines, `;`, `&&`, `||`, `|` and `&` outside quotes end a command; `\\` + newline continues it;
    quotes and `$(...)` are kept whole; `#` starts a comment at the start of a word.
    """
    out, cur = [], []
    line = start = first_line
    quote: Optional[str] = None
    depth = 0  # inside $( ... )
    i, n = 0, len(script)

    def flush() -> None:
        text = "".join(cur).strip()
        if text:
            out.append((start, text))
        cur.clear()

    while i < n:
        c = script[i]
        if quote:
            cur.append(c)
            if c == "\\" and quote == '"' and i + 1 < n:
                cur.append(script[i + 1])
                line += script[i + 1] == "\n"
                i += 2
                continue
            if c == quote:
                quote = None
            line += c == "\n"
            i += 1
            continue
        if c == "\\" and i + 1 < n and script[i + 1] == "\n":
            cur.append(" ")
            line += 1
            i += 2
            continue
        if c == "\\" and i + 1 < n:
            cur.append(script[i : i + 2])
            i += 2
            continue
        if c in "'\"":
            quote = c
            cur.append(c)
            i += 1
            continue
        if c == "$" and script.startswith("$(", i):
            depth += 1
            cur.append("$(")
            i += 2
            continue
        if depth:
            depth += c == "("
            depth -= c == ")"
            line += c == "\n"
            cur.append(c)
            i += 1
            continue
        if c == "#" and (not cur or cur[-1][-1:] in (" ", "\t")):
            while i < n and script[i] != "\n":
                i += 1
            continue
        if c == "\n" or c == ";":
            flush()
            if c == "\n":
                line += 1
            start = line
            i += 1
            continue
        if c in "&|":
            if script.startswith(c * 2, i):
                i += 2
            else:
                if c == "&" and (script.startswith(">", i + 1) or (cur and cur[-1][-1:] in "<>")):
                    cur.append(c)  # a redirection (&> or 2>&1), not a separator
                    i += 1
                    continue
                i += 1
            flush()
            start = line
            continue
        if not "".join(cur).strip():
            start = line
        cur.append(c)
        i += 1
    flush()
    return iter(out)


def _strip_redirections(words: list[str]) -> list[str]:
    """Drop redirections (`> out.json`, `2>&1`, `>>log`, `< in`, `&> all`) and their targets."""
    out, i = [], 0
    while i < len(words):
        m = _REDIRECT.match(words[i])
        if m:
            i += 1 if m["target"] else 2
            continue
        out.append(words[i])
        i += 1
    return out


def _strip_wrappers(words: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """Drop leading keywords, `NAME=value` words and wrapper programs; return (argv, env)."""
    env: list[tuple[str, str]] = []
    while words:
        w = words[0]
        if w in _KEYWORDS:
            words = words[1:]
        elif _ASSIGNMENT.match(w):
            key, value = w.split("=", 1)
            env.append((key, value))
            words = words[1:]
        elif w in ("env", "time", "nice", "command", "exec"):
            words = words[1:]
        elif w == "timeout" and len(words) > 1:
            words = words[2:]
        elif w == "taskset" and len(words) > 2:
            words = words[3:] if words[1].startswith("-") else words[2:]
        else:
            break
    return words, env


def commands_of_script(path: Path, script: str, first_line: int) -> list[DocCommand]:
    """The simple commands of a shell script (control keywords and bare assignments skipped)."""
    found = []
    for line, text in split_shell(script, first_line):
        try:
            words = shlex.split(text, comments=False, posix=True)
        except ValueError as e:  # unbalanced quotes: keep it visible, tier 1 reports it
            found.append(DocCommand(path, line, text, ("<unparsable>", str(e))))
            continue
        if _ASSIGNMENT.match(text) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=(\(|\$\(|`)", text):
            continue  # a variable assignment from a command or an array, not a command to check
        if not words or words[0] in _SKIP_KEYWORDS or words[0].startswith("#"):
            continue
        argv, env = _strip_wrappers(_strip_redirections(words))
        if not argv:
            continue
        found.append(DocCommand(path, line, text, tuple(argv), tuple(env)))
    return found


def _workflow_scripts(block: CodeBlock) -> list[tuple[int, str]]:
    """The `run:` scripts of a CI workflow in a yaml block, each with the line it starts at."""
    try:
        data = yaml.safe_load(block.text)
    except yaml.YAMLError:
        return []
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), dict):
        return []
    lines = block.text.splitlines()
    scripts = []
    for job in data["jobs"].values():
        for step in (job or {}).get("steps", []) or []:
            if isinstance(step, dict) and isinstance(step.get("run"), str):
                script = step["run"]
                first = script.splitlines()[0].strip() if script.strip() else ""
                offset = next((k for k, ln in enumerate(lines) if first and first in ln), 0)
                scripts.append((block.line + offset, script))
    return scripts


def commands_of_block(block: CodeBlock) -> list[DocCommand]:
    if block.lang in SHELL_LANGS:
        return commands_of_script(block.path, block.text, block.line)
    if block.lang in PROMPT_LANGS or block.lang in PLAIN_LANGS:
        found = []
        for k, raw in enumerate(block.text.splitlines()):
            if raw.startswith("$ "):
                found += commands_of_script(block.path, raw[2:] + "\n", block.line + k)
            elif raw.startswith(PROGRAM + " "):
                found += commands_of_script(block.path, raw + "\n", block.line + k)
        return found
    if block.lang in ("yaml", "yml"):
        found = []
        for line, script in _workflow_scripts(block):
            found += commands_of_script(block.path, script, line)
        return found
    return []


def doc_commands(files: Optional[list[Path]] = None) -> list[DocCommand]:
    """Every command shown in the docs, in document order."""
    found = []
    for path in files or doc_files():
        for block in code_blocks(path):
            found += commands_of_block(block)
    return found


def python_blocks(files: Optional[list[Path]] = None) -> list[CodeBlock]:
    return [b for path in files or doc_files() for b in code_blocks(path) if b.lang in ("python", "py")]


def unique(commands: list[DocCommand]) -> list[DocCommand]:
    """One command per distinct argv + environment (the first place it is shown)."""
    seen: dict[tuple, DocCommand] = {}
    for c in commands:
        seen.setdefault((c.argv, c.env), c)
    return list(seen.values())
