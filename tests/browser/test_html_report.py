"""The HTML report of a real short study, opened from disk in headless Chromium."""

from __future__ import annotations

import pytest

from .conftest import BrowserPage, ShortStudy

pytestmark = pytest.mark.slow
#: per section: its title, the plot's traces and the marks drawn in its plotting area
SECTIONS_JS = """Array.from(document.querySelectorAll('section')).map(section => {
  const plot = section.querySelector('.js-plotly-plot');
  return {title: section.querySelector('h2').textContent,
          traces: plot && plot.data ? plot.data.length : 0,
          drawn: plot ? plot.querySelectorAll('.cartesianlayer path.point, .cartesianlayer '
                        + 'path.js-line, .cartesianlayer .bars path, .cartesianlayer .boxes path'
                        ).length : 0};
})"""


def test_html_report_draws_every_plot_offline(short_online_study: ShortStudy,
                                              browser_page: BrowserPage):
    study = short_online_study.study
    path = short_online_study.options.report_dir / f"{study.study_name}.html"
    page = browser_page.page
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))

    page.goto(path.as_uri())
    page.wait_for_function("document.querySelectorAll('.js-plotly-plot .cartesianlayer').length"
                           " === document.querySelectorAll('section').length")
    sections = page.evaluate(SECTIONS_JS)
    browser_page.screenshot("report")

    titles = [section["title"] for section in sections]
    assert titles == ["Optimisation history", "Parameter importances",
                      *[f"Slice: {name}" for name in study.trials[0].params],
                      "Racing", "Latency distribution", "How busy the host was"]
    for section in sections:
        assert section["traces"] > 0 and section["drawn"] > 0, section
    assert fetched == [path.as_uri()]  # plotly.js is inside: nothing else is loaded
    assert browser_page.errors == []
