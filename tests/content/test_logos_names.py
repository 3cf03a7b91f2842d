"""The Logos manifest's filename check is content.manifest's: bidi overrides and line separators
are refused too, and the message shows the name escaped."""

from __future__ import annotations

import pytest

from hoard.content.formats.logos_manifest import name_problem


@pytest.mark.parametrize("name", ["evil\u202etxt.exe", "two\u2028lines", "bell\x07", "../x", "a/b", "..", "del\x7f"])
def test_unsafe_filenames_are_refused(name):
    problem = name_problem("filename", name)
    assert problem is not None and "not a safe base name" in problem
    assert "\u202e" not in problem and "\x07" not in problem and "\u2028" not in problem


@pytest.mark.parametrize("name", [None, "", "report.pdf", "données.csv", "名前.txt"])
def test_safe_filenames_pass(name):
    assert name_problem("filename", name) is None
