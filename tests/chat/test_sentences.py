"""What an extractive answer may quote: never a table header, navigation or a bare fragment."""

from __future__ import annotations

import pytest

from assistant.chat.sentences import BLOCK_LINES, answer_units

BILLING = (
    "Plan | Billed monthly | Billed annually | Storage\n"
    "Free | $0 | $0 | 2 GB\n"
    "Team | $8 per member per month | $6.50 per member per month | 100 GB\n"
    "If you change your mind, you can cancel an annual plan and get a full refund within 14 "
    "days of purchase. Monthly plans are not refunded for partial months."
)
SPHINX_PAGE = (
    "Python » 3.11.4 Documentation » The Python Tutorial »\n"
    "A for loop iterates over the items of any sequence, in the order they appear.\n"
    "Previous topic\n"
    "3. An Informal Introduction to Python\n"
    "Next topic\n"
    "5. Data Structures\n"
    "This Page\n"
    "Report a Bug\n"
    "Show Source\n"
    "Table of Contents"
)


def texts(text: str) -> list[str]:
    return [unit.text for unit in answer_units(text)]


def test_a_tables_header_row_is_never_a_unit_and_labels_its_rows() -> None:
    units = texts(BILLING)
    assert not any(text.startswith("Plan") for text in units)
    assert (
        "Team — Billed monthly: $8 per member per month; Billed annually: $6.50 per member "
        "per month; Storage: 100 GB" in units
    )
    assert units[-1] == "Monthly plans are not refunded for partial months."


def test_a_row_with_figures_is_data_even_first_in_the_passage() -> None:
    # A chunk may start in the middle of a table: its first row is then data, not a header.
    units = texts(
        "Deleted notes in the Trash | 30 days, then deleted permanently\nAudit log | 1 year"
    )
    assert units[0] == "Deleted notes in the Trash; 30 days, then deleted permanently"


def test_navigation_breadcrumbs_and_link_titles_are_dropped() -> None:
    assert texts(SPHINX_PAGE) == [
        "A for loop iterates over the items of any sequence, in the order they appear."
    ]


@pytest.mark.parametrize(
    "line", ["Home › Billing › Refunds", "Docs / Admin / Single sign-on", "Harbor » Help Centre"]
)
def test_breadcrumb_trails_are_dropped(line: str) -> None:
    assert texts(line) == []


def test_prose_with_a_path_in_it_is_kept() -> None:
    line = "Open Settings > Security > Domains, enter your domain and add the TXT record."
    assert texts(line) == [line]


def test_list_items_lose_their_bullet_and_bare_fragments_go() -> None:
    units = answer_units(
        "- Table of contents block.\n- Dark mode\n- Quick search filters: add in:space."
    )
    assert [unit.text for unit in units] == [
        "Table of contents block.",
        "Quick search filters: add in:space.",
    ]
    assert [unit.raw for unit in units] == [
        "- Table of contents block.",
        "- Quick search filters: add in:space.",
    ]


def test_complete_sentences_are_told_from_fragments() -> None:
    units = answer_units(BILLING + "\nworks with most identity providers")
    complete = {unit.text: unit.complete for unit in units}
    assert complete["Monthly plans are not refunded for partial months."]
    assert not complete["works with most identity providers"]
    assert not complete["Free — Billed monthly: $0; Billed annually: $0; Storage: 2 GB"]


def test_interpreter_prompts_and_code_comments_are_not_prose() -> None:
    text = (
        ">>> a_tuple = 1, 2, 3\n# create an INET, STREAMing socket\nA tuple holds several values."
    )
    assert texts(text) == ["A tuple holds several values."]


def test_a_question_is_never_a_unit_but_its_answer_is() -> None:
    # A FAQ entry: its question matches the visitor's words best, yet it answers nothing.
    faq = (
        "What does http.postBuffer really do?\n"
        "This option changes the size of the buffer that Git uses when pushing over HTTP.\n"
        "Is it safe to raise it? Usually not, since most servers cap the size anyway.\n"
        'The manual asks "which buffer is meant here?"'
    )
    assert texts(faq) == [
        "This option changes the size of the buffer that Git uses when pushing over HTTP.",
        "Usually not, since most servers cap the size anyway.",
    ]


def test_the_units_around_a_dropped_question_keep_their_reading_order() -> None:
    units = answer_units("First sentence of the answer here. Why would it matter? Last one here.")
    assert [(unit.text, unit.index) for unit in units] == [
        ("First sentence of the answer here.", 0),
        ("Last one here.", 1),
    ]


@pytest.mark.parametrize(
    ("text", "first"),
    [
        (
            "Some databases lack DDL transactions (e.g. MySQL, Oracle). Wrap the rest in atomic.",
            "Some databases lack DDL transactions (e.g. MySQL, Oracle).",
        ),
        (
            'Point it at a module path (i.e.  "mysite.settings"). Then restart the server.',
            'Point it at a module path (i.e.  "mysite.settings").',
        ),
        (
            "Write the summary in imperative mood, e.g. Make xyzzy do frotz. Keep it short.",
            "Write the summary in imperative mood, e.g. Make xyzzy do frotz.",
        ),
    ],
)
def test_a_sentence_cut_after_an_abbreviation_is_one_unit_as_written(text: str, first: str) -> None:
    units = answer_units(text)
    assert units[0].text == first
    # The unit is the passage's own text (spacing kept): it is found in its chunk by it.
    assert units[0].raw in text
    assert len(units) == 2


DEPLOYING = (
    "Uvicorn needs the module that holds the application.\n"
    "For a typical Django project, invoking Uvicorn would look like:\n"
    "    python -m uvicorn myproject.asgi:application\n"
    "      --workers 2\n"
    "This starts one process listening on port 8000."
)


def test_a_sentence_ending_in_a_colon_carries_the_code_it_introduces() -> None:
    units = {unit.text: unit for unit in answer_units(DEPLOYING)}
    intro = units["For a typical Django project, invoking Uvicorn would look like:"]
    # Dedented, its own indentation kept, and the prose after it left out.
    assert intro.block == "python -m uvicorn myproject.asgi:application\n  --workers 2"
    assert units["This starts one process listening on port 8000."].block == ""


@pytest.mark.parametrize(
    "after",
    [
        "Then restart the server to load it.",  # prose: nothing to show
        "- the first option here\n- the second option here",  # a list is units of its own
        "Setting | Default\nDEBUG | False",  # so is a table
        "",  # the paragraph ends
    ],
)
def test_a_colon_before_prose_a_list_or_a_table_carries_no_block(after: str) -> None:
    units = answer_units(f"To turn it on, set these values:\n{after}")
    assert units[0].text == "To turn it on, set these values:"
    assert units[0].block == ""


def test_a_long_block_is_cut_with_an_ellipsis_and_a_list_item_carries_none() -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(BLOCK_LINES + 5))
    units = answer_units(f"The settings file looks like this:\n{code}")
    assert units[0].block.split("\n") == [f"x{i} = {i}" for i in range(BLOCK_LINES)] + ["…"]
    # A list item ending in a colon introduces the item's own content, not the lines after it.
    item = answer_units(f"- the settings file looks like this:\n{code}")
    assert item[0].text == "the settings file looks like this:" and item[0].block == ""
