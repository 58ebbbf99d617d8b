"""A griffe extension for `make docs`: jaxgd's docstrings use a few reST
constructs (``:func:`x` ``, ``:math:`x` ``, ``.. math::``) that Markdown does
not know. Before mkdocstrings renders a docstring, this rewrites them:

- ``:func:`jaxgd.fit` `` (any role, a ``jaxgd.`` target that the reference
  renders) becomes a cross-reference link; other targets become code;
- an ``Example:`` section becomes ``Examples:`` (griffe's name for the
  section whose ``>>>`` lines it renders as code);
- ``:math:`x` `` becomes ``$x$`` and a ``.. math::`` block (or line) becomes ``$$ … $$``
  (pymdownx.arithmatex renders both).

Only the rendered text changes; the docstrings themselves stay as written.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|obj|exc):`~?([^`]+)`")
MATH_LINE = re.compile(r"^([ \t]*)\.\. math::[ \t]+(\S.*)$", re.M)
MATH_ROLE = re.compile(r":math:`([^`]+)`")
EXAMPLE = re.compile(r"^([ \t]*)Example:[ \t]*$", re.M)  # griffe knows only "Examples:"
MATH_BLOCK = re.compile(r"^([ \t]*)\.\. math::[ \t]*\n((?:[ \t]*\n)*)((?:\1[ \t]+\S.*\n|[ \t]*\n)+)", re.M)

# Objects with a heading of their own in docs/api/*.md: links to them resolve.
# (Members of these, e.g. jaxgd.Solver.resume, are rendered too.)
LINKABLE = re.compile(
    r"jaxgd\.(minimize|Solver|SolverState|Result|History|Status|fit|FitResult|FitHistory|FitStatus|Remainder"
    r"|check_grad|GradCheck|save_checkpoint|load_checkpoint|checkpoint_info|CheckpointError|TreeMismatchError"
    r"|methods|Direction|schedules|linesearch|directions|problems|plot)(\.\w+)*"
)


def _role(match: re.Match) -> str:
    target = match.group(1)
    if LINKABLE.fullmatch(target) and target.count(".") <= 2:
        return f"[`{target}`][{target}]"
    return f"`{target}`"


def _math_block(match: re.Match) -> str:
    body = textwrap.dedent(match.group(3)).strip("\n")
    indent = match.group(1)
    return f"{indent}$$\n" + textwrap.indent(body, indent) + f"\n{indent}$$\n\n"


def rewrite(text: str) -> str:
    """The docstring ``text`` with its option placeholders expanded (as at import
    time) and its reST roles and math turned into Markdown."""
    from jaxgd.core.options import expand  # the same {options:...} expansion the package applies

    text = expand(text)
    text = EXAMPLE.sub(r"\1Examples:", text)
    text = MATH_BLOCK.sub(_math_block, text)
    text = MATH_LINE.sub(lambda m: f"{m.group(1)}$$\n{m.group(1)}{m.group(2)}\n{m.group(1)}$$\n", text)
    text = MATH_ROLE.sub(lambda m: f"${m.group(1)}$", text)
    return ROLE.sub(_role, text)


class ReSTRoles(griffe.Extension):
    """Rewrite each docstring once, when griffe loads its object."""

    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rewrite(obj.docstring.value)
