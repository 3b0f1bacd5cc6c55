"""One place per field kind (issue 14): no code outside `modalities/` (and the per-kind stream rules
of `align/rules/`) compares a kind name, so a new kind is one plug-in file plus its registry line.

The scan reads every source file as text and looks for a kind name in quotes next to a comparison
(`== "image"`, `!= 'audio'`, `in ("image", "audio")`, `"text": …` keys of a per-kind table, and the
same in the web page's JavaScript). Registry lines (`register("image", …)`) are where kinds are
listed and are allowed."""

from __future__ import annotations

import re
from pathlib import Path

import plait
from plait.modalities import MODALITIES

SRC = Path(plait.__file__).parent
ALLOWED = ("modalities/", "align/rules/", "datasets/")  # plug-ins, per-kind stream rules, and data
# generators (whose columns are named after kinds: they build tables, they do not branch)


def _kind_patterns(kinds: list[str]) -> list[re.Pattern[str]]:
    names = "|".join(re.escape(k) for k in kinds)
    quoted = rf"""["']({names})["']"""
    return [
        re.compile(rf"(==|!==?|===)\s*{quoted}"),  # kind == "image" (Python and JS)
        re.compile(rf"{quoted}\s*(==|!=)"),  # "image" == kind
        re.compile(rf"\bin\s*[\(\[\{{]\s*{quoted}"),  # kind in ("image", …)
        re.compile(rf"{quoted}\s*,\s*{quoted}"),  # a tuple or set of kind names
        re.compile(rf"^\s*{quoted}\s*:"),  # a per-kind table: {"image": …}
    ]


def offending_lines(kinds: list[str]) -> list[str]:
    patterns = _kind_patterns(kinds)
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC).as_posix()
        if relative.startswith(ALLOWED):
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if "register(" in line:
                continue
            if any(p.search(line) for p in patterns):
                found.append(f"{relative}:{number}: {line.strip()}")
    return found


def test_no_kind_name_is_compared_outside_the_plug_ins():
    found = offending_lines(MODALITIES.names())
    assert not found, "kind names compared outside modalities/ (ask the modality instead):\n" + "\n".join(
        found
    )


def test_the_scan_finds_a_comparison():
    """The scan is not blind: a comparison written the usual ways is found."""
    patterns = _kind_patterns(["image", "audio"])
    for code in (
        'if m.kind == "image":',
        "kind in ('image', 'audio')",
        'f.kind === "audio"',
        '    "image": 1,',
    ):
        assert any(p.search(code) for p in patterns), code
    assert not any(p.search('Guess("image", "a path")') for p in patterns[:3])
