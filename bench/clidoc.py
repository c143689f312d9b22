"""The CLI reference (docs/cli.md), generated from the click commands themselves.

    python -m bench.clidoc --out docs/cli.md      # rewrite the reference
    python -m bench.clidoc --check docs/cli.md    # exit 1 if it is out of date

Every command and sub-group of `facebench` (groups added later included) gets its usage line, its help
text and a table of its arguments and options (names, type or choices, default, help), so the reference
cannot drift from the code: tests/test_docs.py fails until it is regenerated.
"""
from __future__ import annotations

import inspect
import sys
from pathlib import Path
from typing import Iterator, Optional

import click

GENERATOR = "python -m bench.clidoc --out docs/cli.md"


def _help_text(cmd: click.Command) -> str:
    """The command's help as markdown: click's `\\f` cut and `\\b` no-rewrap markers honoured."""
    text = inspect.cleandoc(cmd.help or "").split("\f")[0]
    return "\n".join(line for line in text.splitlines() if line.strip() != "\b").strip()


def _cell(text: str) -> str:
    """Text fit for one markdown table cell."""
    return " ".join(str(text).split()).replace("|", "\\|")


def _type(param: click.Parameter, ctx: click.Context) -> str:
    if isinstance(param, click.Option) and param.is_flag:
        return "flag"
    kind = param.type
    if isinstance(kind, click.Choice):
        return " \\| ".join(f"`{c}`" for c in kind.choices)
    if isinstance(kind, (click.IntRange, click.FloatRange)):
        base = ("integer " if isinstance(kind, click.IntRange) else "number ") + kind._describe_range()
    elif isinstance(kind, click.Path):
        base = "directory" if not kind.file_okay and kind.dir_okay else "file" if not kind.dir_okay else "path"
    else:
        base = {"integer": "integer", "float": "number"}.get(kind.name, kind.name)
    metavar = param.metavar if isinstance(param, click.Option) else None
    return f"{base} (`{_cell(metavar)}`)" if metavar else base


def _default(param: click.Parameter, ctx: click.Context) -> str:
    if param.required:
        return "required"
    if isinstance(param, click.Argument):
        return "optional"
    value = param.get_default(ctx, call=False)
    if callable(value) or value is None or value is False or value == () or type(value).__name__ == "Sentinel":
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(f"`{v}`" for v in value)
    return f"`{value}`"


def _names(param: click.Parameter) -> str:
    if isinstance(param, click.Argument):
        return f"`{param.human_readable_name}`"
    names = list(param.opts) + list(param.secondary_opts)
    return ", ".join(f"`{n}`" for n in names) + (" (repeatable)" if getattr(param, "multiple", False) else "")


def _help(param: click.Parameter) -> str:
    return getattr(param, "help", None) or ""


def walk(cmd: click.Command, ctx: click.Context) -> Iterator[tuple[click.Command, click.Context]]:
    """The command and, for a group, every sub-command below it (in the group's listing order)."""
    yield cmd, ctx
    if isinstance(cmd, click.Group):
        for name in cmd.list_commands(ctx):
            sub = cmd.get_command(ctx, name)
            if sub is None or sub.hidden:
                continue
            yield from walk(sub, click.Context(sub, info_name=name, parent=ctx))


def _anchor(path: str) -> str:
    return path.lower().replace(" ", "-")


def render(group: Optional[click.Group] = None, name: str = "facebench") -> str:
    """The markdown reference of `group` (default: the `facebench` CLI)."""
    if group is None:
        from bench.cli import main as group
    root = click.Context(group, info_name=name)
    out = [
        "# CLI reference",
        "",
        f"<!-- Generated from the click commands by `{GENERATOR}`; do not edit by hand. "
        "tests/test_docs.py fails when it is out of date. -->",
        "",
        f"Every `{name}` command, its usage, its help and its options, as `{name} COMMAND --help` prints them. "
        "Every command also takes `-h` / `--help`. Errors you can cause print one line and exit with status 2.",
        "",
    ]
    entries = list(walk(group, root))
    out += [f"- [`{c.command_path}`](#{_anchor(c.command_path)})" + (f": {_cell(cmd.get_short_help_str(200))}" if cmd is not group else "")
            for cmd, c in entries]
    out.append("")
    for cmd, ctx in entries:
        out += [f"## {ctx.command_path}", "", "```", f"Usage: {ctx.command_path} {' '.join(cmd.collect_usage_pieces(ctx))}".rstrip(), "```", ""]
        text = _help_text(cmd)
        if text:
            out += [text, ""]
        if isinstance(cmd, click.Group):
            subs = [n for n in cmd.list_commands(ctx) if not cmd.get_command(ctx, n).hidden]
            out += ["Commands: " + ", ".join(f"[`{n}`](#{_anchor(ctx.command_path + ' ' + n)})" for n in subs), ""]
        help_option = cmd.get_help_option(ctx)
        params = [p for p in cmd.get_params(ctx) if p is not help_option and not getattr(p, "hidden", False)]
        if params:
            out += ["| argument / option | type | default | description |", "|---|---|---|---|"]
            out += [f"| {_names(p)} | {_type(p, ctx)} | {_default(p, ctx)} | {_cell(_help(p))} |" for p in params]
            out.append("")
    return "\n".join(out).rstrip() + "\n"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the reference to this file. Default: print it.")
@click.option("--check", "check_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Compare this file with the reference instead of writing; exit 1 when it differs.")
def cli(out: Optional[Path], check_path: Optional[Path]) -> None:
    """Generate the markdown CLI reference of `facebench` from its click commands."""
    text = render()
    if check_path is not None:
        current = check_path.read_text() if check_path.is_file() else ""
        if current != text:
            click.echo(f"{check_path} is out of date; run: {GENERATOR}", err=True)
            sys.exit(1)
        click.echo(f"{check_path} is up to date")
        return
    if out is None:
        click.echo(text, nl=False)
    else:
        out.write_text(text)
        click.echo(f"wrote {out}", err=True)


if __name__ == "__main__":
    cli()
