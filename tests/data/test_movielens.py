"""Readers of the real MovieLens formats, on small files written here."""

from pathlib import Path

import numpy as np
import pytest

from autotune.cli import main
from autotune.data.movielens import load_movielens
from autotune.errors import UsageError


def write(data_dir: Path, dataset: str, filename: str, text: str) -> Path:
    path = data_dir / dataset / filename
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.mark.parametrize("dataset, filename, text", [
    ("ml-1m", "ratings.dat",
     "1::1193::5::978300760\n1::661::3::978302109\n2::3408::4::978300275\n"),
    ("ml-100k", "u.data", "1\t1193\t5\t978300760\n1\t661\t3\t978302109\n2\t3408\t4\t978300275\n"),
    ("ml-20m", "ratings.csv", "userId,movieId,rating,timestamp\n1,1193,5.0,978300760\n"
                              "1,661,3.5,978302109\n2,3408,4.0,978300275\n"),
    ("ml-latest", "ratings.csv", "userId,movieId,rating,timestamp\n1,1193,5.0,978300760\n"
                                 "1,661,3.5,978302109\n\n2,3408,4.0,978300275\n"),
])
def test_each_format_reads_users_items_and_timestamps(tmp_path, dataset, filename, text):
    write(tmp_path, dataset, filename, text)
    ratings = load_movielens(dataset, tmp_path)
    assert ratings.users.tolist() == [1, 1, 2]
    assert ratings.items.tolist() == [1193, 661, 3408]
    assert ratings.timestamps.tolist() == [978300760, 978302109, 978300275]
    assert ratings.users.dtype == np.int64


@pytest.mark.parametrize("line, problem", [
    ("1::1193::5", "expected 4 fields"),
    ("1::abc::5::978300760", "item id 'abc' is not a number"),
    ("1::1193::five::978300760", "rating 'five' is not a number"),
    ("1:1193:5:978300760", "expected 4 fields"),
])
def test_a_malformed_line_names_file_line_and_problem(tmp_path, line, problem):
    path = write(tmp_path, "ml-1m", "ratings.dat", f"1::1::5::1\n2::2::4::2\n{line}\n3::3::3::3\n")
    with pytest.raises(UsageError) as error:
        load_movielens("ml-1m", tmp_path)
    assert f"{path}:3:" in str(error.value) and problem in str(error.value)


def test_a_wrong_csv_header_is_rejected(tmp_path):
    write(tmp_path, "ml-20m", "ratings.csv", "user,movie,stars,time\n1,2,3.0,4\n")
    with pytest.raises(UsageError, match=r"ratings.csv:1: expected the header"):
        load_movielens("ml-20m", tmp_path)


def test_a_missing_file_says_where_it_looked_and_what_to_do(tmp_path):
    with pytest.raises(UsageError) as error:
        load_movielens("ml-1m", tmp_path)
    message = str(error.value)
    assert str(tmp_path / "ml-1m" / "ratings.dat") in message
    assert "--download" in message and "--dataset synthetic" in message


def test_cli_reports_a_malformed_line_in_one_line_with_exit_code_2(tmp_path, capsys):
    path = write(tmp_path, "ml-100k", "u.data", "1\t2\t3\t4\n1\t2\n")
    code = main(["prepare", "--dataset", "ml-100k", "--data-dir", str(tmp_path), "--quiet"])
    error = capsys.readouterr().err
    assert code == 2
    assert error.count("\n") == 1 and f"{path}:2:" in error and "expected 4 fields" in error
