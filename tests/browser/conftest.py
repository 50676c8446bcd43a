"""A real headless Chromium (driven by Playwright) and a real short study to look at.

Chromium is Debian's (`/usr/bin/chromium`, or `$AUTOTUNE_CHROMIUM`); Playwright never
downloads a browser of its own. Without Chromium or Playwright the browser tests skip
with the reason, except under CI=true, where `.ci/run` installs both and they fail.
Each test's screenshots go to its own tmp_path.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import optuna
import pytest

from autotune.options import TuningOptions
from autotune.tuning.run import run_tuning
from ci import unavailable
from quick import quick_options

CHROMIUM = os.environ.get("AUTOTUNE_CHROMIUM", "/usr/bin/chromium")
#: headless, no GPU, no sandbox (root in CI), and no traffic of Chromium's own
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]
SHORT_STUDY_TRIALS = 3


def _missing_browser() -> str | None:
    if importlib.util.find_spec("playwright") is None:
        return "Playwright is not installed (pip install -e '.[test]')"
    if shutil.which(CHROMIUM) is None:
        return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set $AUTOTUNE_CHROMIUM)"
    return None


@pytest.fixture(scope="session")
def chromium() -> Iterator[object]:
    """A headless Chromium for the session (a Playwright `Browser`)."""
    reason = _missing_browser()
    if reason:
        unavailable("a browser", reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@dataclass
class BrowserPage:
    """A fresh page that records console errors and uncaught page errors."""

    page: object
    folder: Path
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        """A full-page PNG in the test's tmp_path."""
        path = self.folder / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def browser_page(chromium, tmp_path: Path) -> Iterator[BrowserPage]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    recorded = BrowserPage(page, tmp_path)
    page.on("console", lambda message: message.type == "error"
            and recorded.errors.append(f"console: {message.text}"))
    page.on("pageerror", lambda error: recorded.errors.append(f"page error: {error}"))
    yield recorded
    context.close()


@dataclass(frozen=True)
class ShortStudy:
    """A finished real study (local launcher, small model) and its options."""

    options: TuningOptions
    study: optuna.Study


@pytest.fixture(scope="session")
def short_online_study(small_assets, tmp_path_factory: pytest.TempPathFactory) -> ShortStudy:
    """A real online study of a few trials with its racing, reported."""
    # racing (and so pruning against) as many finalists as there are trials: a third trial
    # pruned as slower would leave too few measured trials for the importances plot
    options = quick_options(tmp_path_factory.mktemp("browser-study"), "online",
                            trials=SHORT_STUDY_TRIALS, confirm_top=SHORT_STUDY_TRIALS)
    assert run_tuning(options, assets=small_assets) == 0
    name, = optuna.study.get_all_study_names(options.storage)
    return ShortStudy(options, optuna.load_study(study_name=name, storage=options.storage))
