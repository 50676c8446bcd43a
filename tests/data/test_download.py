"""`--download` against a local http.server on 127.0.0.1 serving zips built here."""

import functools
import http.server
import io
import re
import socket
import threading
import zipfile
from pathlib import Path

import pytest
from rich.console import Console

from autotune.assets.prepare import download_with_bar
from autotune.cli import main
from autotune.data.download import URL_VARIABLE, DownloadError, download_movielens
from autotune.data.movielens import load_movielens

ROWS = 100_000  # ml-100k's documented size: the plausibility floor


def ml100k_lines(rows: int = ROWS) -> str:
    return "".join(f"{1 + i % 943}\t{1 + i % 1682}\t{1 + i % 5}\t{874965758 + i}\n"
                   for i in range(rows))


def build_zip(path: Path, members: dict[str, str]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, text in members.items():
            archive.writestr(name, text)
    return path


@pytest.fixture
def served(tmp_path):
    """(folder, base URL): files put in the folder are served over http on 127.0.0.1."""
    folder = tmp_path / "served"
    folder.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}/movielens"
    server.shutdown()
    server.server_close()


def test_a_good_zip_is_verified_unpacked_and_readable(served, tmp_path, monkeypatch):
    folder, base_url = served
    (folder / "movielens").mkdir()
    build_zip(folder / "movielens" / "ml-100k.zip",
              {"ml-100k/u.data": ml100k_lines(), "ml-100k/README": "MovieLens 100K"})
    monkeypatch.setenv(URL_VARIABLE, base_url)
    data_dir = tmp_path / "data"
    heard: list[tuple[int, int | None]] = []
    target = download_movielens("ml-100k", data_dir,
                                on_progress=lambda *bytes_: heard.append(bytes_))
    assert target == data_dir / "ml-100k"
    size = (folder / "movielens" / "ml-100k.zip").stat().st_size
    received = [got for got, _ in heard]
    assert heard[-1] == (size, size) and received == sorted(set(received))
    assert (data_dir / "ml-100k" / "README").read_text() == "MovieLens 100K"
    assert len(load_movielens("ml-100k", data_dir)) == ROWS
    assert [entry.name for entry in data_dir.iterdir()] == ["ml-100k"]  # no scratch left


def test_a_corrupt_zip_is_a_clear_error(served, tmp_path):
    folder, base_url = served
    good = build_zip(tmp_path / "good.zip", {"ml-100k/u.data": ml100k_lines()}).read_bytes()
    middle = len(good) // 2
    flipped = bytes(b ^ 0xFF for b in good[middle:middle + 64])
    (folder / "ml-100k.zip").write_bytes(good[:middle] + flipped + good[middle + 64:])
    with pytest.raises(DownloadError, match="corrupt|not a valid zip"):
        download_movielens("ml-100k", tmp_path / "data", base_url=base_url.rsplit("/", 1)[0])
    assert not (tmp_path / "data" / "ml-100k").exists()


def test_a_zip_that_is_no_zip_is_a_clear_error(served, tmp_path):
    folder, base_url = served
    (folder / "ml-100k.zip").write_text("<html>moved</html>")
    with pytest.raises(DownloadError, match="not a valid zip"):
        download_movielens("ml-100k", tmp_path, base_url=base_url.rsplit("/", 1)[0])


@pytest.mark.parametrize("members, problem", [
    ({"ml-100k/u.item": "1|Toy Story"}, "ml-100k/u.data is missing"),
    ({"ml-100k/u.data": ml100k_lines(500)}, "has 500 ratings, expected at least 100000"),
    ({"ml-100k/u.data": ml100k_lines(), "../evil": "x"}, "outside ml-100k/"),
])
def test_unexpected_content_is_rejected(served, tmp_path, members, problem):
    folder, base_url = served
    build_zip(folder / "ml-100k.zip", members)
    with pytest.raises(DownloadError, match=problem):
        download_movielens("ml-100k", tmp_path, base_url=base_url.rsplit("/", 1)[0])


def test_missing_file_on_the_server_names_the_http_status(served, tmp_path):
    _, base_url = served
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_movielens("ml-1m", tmp_path, base_url=base_url)


def test_no_network_is_one_line_through_the_cli(tmp_path, capsys, monkeypatch):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(URL_VARIABLE, f"http://127.0.0.1:{port}")
    code = main(["prepare", "--dataset", "ml-1m", "--download", "--data-dir", str(tmp_path),
                 "--quiet"])
    error = capsys.readouterr().err
    assert code == 1 and error.count("\n") == 1
    assert f"could not download http://127.0.0.1:{port}/ml-1m.zip" in error


def test_prepare_draws_a_download_bar_with_size_and_speed(served, tmp_path, monkeypatch):
    folder, base_url = served
    (folder / "movielens").mkdir()
    build_zip(folder / "movielens" / "ml-100k.zip", {"ml-100k/u.data": ml100k_lines()})
    monkeypatch.setenv(URL_VARIABLE, base_url)
    screen = io.StringIO()
    download_with_bar("ml-100k", tmp_path / "data", Console(file=screen, width=120))
    bar = screen.getvalue()
    # the size received of the whole, and a speed: in whatever unit this host's speed
    # gives (a fast host draws GB/s, a slow one kB/s); the test asserts the bar, not a speed
    assert "downloading ml-100k.zip" in bar
    assert re.search(r"\d+(\.\d+)?/\d+(\.\d+)? [kMG]?B\b", bar)
    assert re.search(r"\d+(\.\d+)? [kMGT]?B/s", bar)
