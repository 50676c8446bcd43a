"""The one rule from a study name to its report files' name (autotune.report.files)."""

import hashlib

import pytest

from autotune.report.files import DIGEST_HEX, JSON, file_stem, report_file


@pytest.mark.parametrize("name", ["online-1a2b3c4d5e", "v1.0-final", "Xeon_8380.batch",
                                  "a" * 100])
def test_a_plain_name_is_its_own_file_name(name):
    assert file_stem(name) == name


@pytest.mark.parametrize("name, readable", [
    ("../../evil", "evil"), ("/tmp/evil", "tmp_evil"), (".hidden", "hidden"),
    ("a b", "a_b"), ("été", "t"), ("a" * 101, "a" * 60), ("..", "study"),
    ("x-0123456789abcdef", "x-0123456789abcdef"),  # ends like a changed name
])
def test_any_other_name_is_changed_and_carries_its_digest(name, readable):
    digest = hashlib.sha256(name.encode()).hexdigest()[:DIGEST_HEX]
    assert file_stem(name) == f"{readable}-{digest}"


def test_no_two_names_share_a_file_name():
    names = ["a/b", "a_b", "a?b", "a b", "../a_b", "v1.0", "v1.1", "x"]
    names.append(file_stem("a/b"))  # a name spelled as another's changed one
    assert len({file_stem(name) for name in names}) == len(names)


def test_files_stay_in_the_folder(tmp_path):
    for name in ("../../x", "/etc/passwd", "a/../../b", "\x00"):
        path = report_file(tmp_path, name, JSON)
        assert path.parent == tmp_path and not path.name.startswith(".")
