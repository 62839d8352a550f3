"""End to end on a real documentation site: Python's HTML docs (Debian's python3.11-doc),
served on loopback, crawled from the tutorial, then asked questions whose source page is known.

robots.txt keeps the crawl to the tutorial and a few top-level pages, which also checks that the
crawler obeys it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from assistant.core import Assistant
from tests.support.servers import StaticSite

DOCS = Path("/usr/share/doc/python3.11/html")
ROBOTS = "User-agent: *\n" + "".join(
    f"Disallow: /{path}\n"
    for path in (
        "genindex",
        "py-modindex",
        "search",
        "_",
        "download",
        "whatsnew/",
        "library/",
        "reference/",
        "c-api/",
        "using/",
        "howto/",
        "faq/",
        "extending/",
        "installing/",
        "distributing/",
        "deprecations/",
    )
)
QUESTIONS = {
    "How do I create a virtual environment?": "tutorial/venv.html",
    "What does the break statement do in a for loop?": "tutorial/controlflow.html",
    "How do I handle an exception with try and except?": "tutorial/errors.html",
    "What is a list comprehension?": "tutorial/datastructures.html",
    "Why does 0.1 + 0.2 not equal 0.3 exactly?": "tutorial/floatingpoint.html",
    "How do I format strings with f-strings?": "tutorial/inputoutput.html",
}


@pytest.fixture(scope="module")
def docs_site() -> Iterator[StaticSite]:
    if not (DOCS / "tutorial" / "index.html").exists():
        pytest.fail("Python's HTML docs are missing: apt-get install python3.11-doc")
    with StaticSite(DOCS, ROBOTS) as site:
        yield site


@pytest.mark.slow
@pytest.mark.integration
def test_crawled_docs_answer_with_the_right_page(
    docs_site: StaticSite, make_assistant: Callable[..., Assistant]
) -> None:
    assistant = make_assistant(fetch_allow_hosts=("127.0.0.1",))
    root = docs_site.url + "tutorial/index.html"
    report = assistant.ingest([root], kb="pydocs", crawl=True, max_pages=60, max_depth=2)
    assert not report.failures and not report.incomplete_sources
    urls = {outcome.url.removeprefix(docs_site.url) for outcome in report.outcomes}
    assert {"tutorial/venv.html", "tutorial/classes.html"} <= urls
    assert not any(url.startswith(("library/", "genindex")) for url in urls)  # robots.txt
    for question, page in QUESTIONS.items():
        answer = assistant.ask(question, kb="pydocs")
        assert answer.citations, question
        assert answer.citations[0].url == docs_site.url + page, question
    again = assistant.ingest([root], kb="pydocs", crawl=True, max_pages=60, max_depth=2)
    assert again.count("unchanged") == report.count("added") and again.chunks_embedded == 0
