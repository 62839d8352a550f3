"""Condensing follow-ups: the rules, the provider path over the wire, and real retrieval."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from assistant.chat.answerer import drain
from assistant.chat.condense import (
    Condenser,
    ProviderCondenser,
    RuleBasedCondenser,
    clean_reply,
    rewrite_follow_up,
)
from assistant.chat.history import HistoryTurn
from assistant.chat.prompts import PromptLibrary
from assistant.chat.providers import ProviderOptions
from assistant.chat.providers.openai import OpenAIProvider
from assistant.core import Assistant
from tests.chat.fake_openai import Fail, FakeOpenAIServer, Stream

API_KEY = "sk-test-condense-0123456789"
HELP_CENTRE = Path(__file__).resolve().parents[2] / "examples" / "help-centre"

SLACK_TURN = HistoryTurn(
    "Which plans include the Slack integration?",
    "The Slack integration is available on the Team, Business and Enterprise plans [1].",
)


# --- the rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "message", "expected"),
    [
        (
            "Which plans include the Slack integration?",
            "and how much does it cost?",
            "How much does the Slack integration cost (plans include)?",
        ),
        (
            "How much does the Team plan cost?",
            "what about the Pro plan?",
            "How much does the Pro plan cost?",
        ),
        (
            "Does Harbor support two-factor authentication?",
            "how do I turn it on?",
            "How do I turn two-factor authentication on (Harbor support)?",
        ),
        (
            "Does Harbor have a desktop app?",
            "does that work on Android?",
            "Does the desktop app work on Android (Harbor)?",
        ),
        (
            "How do I create an API key?",
            "so what are its rate limits?",
            "What are the API key's rate limits?",
        ),
        (
            "Which plans have the audit log?",
            "Also, how long is it kept?",
            "How long is the audit log kept (plans)?",
        ),
        ("How do I delete my account?", "how do I undo it?", "How do I undo my account (delete)?"),
        (
            "How do I create a virtual environment?",
            "how do I activate it on Windows?",
            "How do I activate the virtual environment on Windows?",
        ),
        (
            "How do I create a virtual environment?",
            "and on Windows?",
            "How do I create a virtual environment on Windows?",
        ),
        (
            "Which plans include the Slack integration?",
            "and for teams?",
            "Which plans include the Slack integration for teams?",
        ),
        (
            "Can I use Harbor offline?",
            "how about on Android?",
            "Can I use Harbor offline on Android?",
        ),
        ("Can I use Harbor offline?", "on Android?", "Can I use Harbor offline on Android?"),
        ("What plans are there?", "which one is cheaper?", "Which one is cheaper plans?"),
        ("How do I export my data?", "why?", "Why export data?"),
        ("How do I export my data?", "and the formats?", "The formats export data?"),
        (  # the verb's object is the topic, not the phrase after "from" ...
            "How do I send an email from a Django view?",
            "what about attaching a PDF to it?",
            "Attaching a PDF to the email (send Django view)?",
        ),
        (  # ... or "as", and the word after "I" is the verb, even one the rules do not list
            "How do I set up PostgreSQL as my project's database?",
            "is it fast?",
            "Is PostgreSQL fast (set project's database)?",
        ),
        (
            "How can I write a view for my blog?",
            "how do I test it?",
            "How do I test the view (write blog)?",
        ),
    ],
)
def test_follow_ups_are_rewritten_with_the_previous_topic(
    previous: str, message: str, expected: str
) -> None:
    assert rewrite_follow_up(message, previous) == expected


@pytest.mark.parametrize(
    "message",
    [
        "How do I export my notes?",
        "Who can see my private notes?",
        "Is there a plan that includes single sign-on?",
        "Can I belong to more than one workspace?",
        "Is it possible to import from Notion?",
        "How long does it take to verify a domain?",
        "Reset my password",
        "What does error HBR-2417 mean?",
    ],
)
def test_self_contained_messages_are_returned_unchanged(message: str) -> None:
    assert rewrite_follow_up(message, "Which plans include the Slack integration?") == message


def test_a_leading_connective_is_dropped_when_the_rest_names_its_own_topic() -> None:
    rewritten = rewrite_follow_up("also, can I export notes as PDF?", "How do I invite my team?")

    assert rewritten == "Can I export notes as PDF?"


@pytest.mark.parametrize(
    ("previous", "message", "expected"),
    [
        (  # "and" goes on with the previous subject even when it names a topic of its own
            "Which configure options does a Python build take?",
            "and how do I make a debug build?",
            "How do I make a debug build (configure options Python take)?",
        ),
        (
            "How do I undo a commit on a shared branch?",
            "what if that commit is a merge?",
            "What if that commit is a merge undo shared branch?",
        ),
        (
            "How do I fetch a web page with urllib?",
            "What if I'm behind a proxy at work?",
            "What if I'm behind a proxy at work (fetch web page urllib)?",
        ),
        (
            "How do I run the tests in parallel?",
            "Can I use pytest instead?",
            "Can I use pytest instead (run tests parallel)?",
        ),
        (  # the end of the previous activity, and a closing "before"
            "How do I start a bisect session to find a bad commit?",
            "When I'm done, how do I get back to where I was before?",
            "When I'm done, how do I get back to where I was before"
            " (start bisect session find bad commit)?",
        ),
        (
            "How do I use the Paginator class?",
            "what happens if someone asks for page 500?",
            "What happens if someone asks for page 500 (use Paginator class)?",
        ),
    ],
)
def test_continuations_keep_the_previous_subject(
    previous: str, message: str, expected: str
) -> None:
    assert rewrite_follow_up(message, previous) == expected


@pytest.mark.parametrize(
    ("previous", "message", "expected"),
    [
        (
            "How do I set up PostgreSQL as my project's database?",
            "and MySQL?",
            "How do I set up MySQL as my project's database?",
        ),
        (
            "How do I deploy Django with Gunicorn?",
            "What about uWSGI instead?",
            "How do I deploy Django with uWSGI?",
        ),
        (  # a name of several words takes the place of the whole name
            "Does Harbor sync with Google Drive?",
            "and Microsoft OneDrive?",
            "Does Harbor sync with Microsoft OneDrive?",
        ),
        ("Does Harbor support SSO?", "and SAML?", "Does Harbor support SAML?"),
    ],
)
def test_a_name_alone_asks_the_previous_question_about_it(
    previous: str, message: str, expected: str
) -> None:
    assert rewrite_follow_up(message, previous) == expected


def test_a_name_replaces_no_ignored_term_and_needs_a_name_to_replace() -> None:
    # The product name is not what the visitor swaps out ...
    assert rewrite_follow_up("and Dropbox?", "Does Harbor sync?", {"Harbor"}) == (
        "Dropbox Harbor sync?"
    )
    # ... and a message that is not only names keeps the noun-phrase rule.
    assert rewrite_follow_up("what about the Pro plan?", "How much does the Team plan cost?") == (
        "How much does the Pro plan cost?"
    )


@pytest.mark.parametrize(
    ("message", "previous", "expected"),
    [
        (
            "Can I see what would be deleted before it actually happens?",
            "How do I delete untracked files from my working tree?",
            "Can I see what would be deleted before it actually happens delete untracked files"
            " working tree?",
        ),
        (
            "It stopped halfway with conflicts; how do I give up?",
            "How do I rebase my feature branch onto the latest main?",
            "It stopped halfway with conflicts; how do I give up rebase feature branch latest"
            " main?",
        ),
    ],
)
def test_it_before_an_event_verb_is_the_previous_activity_not_its_object(
    message: str, previous: str, expected: str
) -> None:
    """ "It" happening or stopping is the deletion or the rebase: naming the files or the branch
    there would ask another question, so the previous question's words are added instead."""
    assert rewrite_follow_up(message, previous) == expected


def test_it_before_other_verbs_still_names_the_previous_object() -> None:
    previous = "How do I install the desktop app?"
    assert rewrite_follow_up("does it work with Zapier?", previous) == (
        "Does the desktop app work with Zapier?"
    )


def test_a_demonstrative_before_a_noun_refers_back_but_a_relative_that_does_not() -> None:
    previous = "How do I map several author names to one person?"

    assert rewrite_follow_up("does blame use that file?", previous) == (
        "Does blame use that file map several author names one person?"
    )
    assert rewrite_follow_up("Is there a plan that includes SSO?", previous) == (
        "Is there a plan that includes SSO?"
    )
    # After a verb, a lone "that" is the previous subject itself.
    rewritten = rewrite_follow_up(
        "how do I stop that?", "How do I connect to the post_save signal?"
    )
    assert rewritten == "How do I stop the post_save signal (connect)?"


def test_ignored_terms_never_become_the_topic() -> None:
    previous = "Does Harbor support SSO?"

    assert rewrite_follow_up("how do I turn it on?", previous) == (
        "How do I turn Harbor on (support SSO)?"
    )
    assert rewrite_follow_up("how do I turn it on?", previous, {"Harbor"}) == (
        "How do I turn SSO on?"
    )


def test_a_message_without_words_is_returned_unchanged() -> None:
    assert rewrite_follow_up(" ?! ", "How do I export my data?") == " ?! "


async def test_first_turn_is_returned_unchanged() -> None:
    assert await RuleBasedCondenser().condense("and how much does it cost?", []) == (
        "and how much does it cost?"
    )


async def test_the_last_turns_standalone_question_carries_the_topic_forward() -> None:
    history = [
        SLACK_TURN,
        HistoryTurn("and how much does it cost?", "It is included.", "How much does Slack cost?"),
    ]

    condensed = await RuleBasedCondenser().condense("does it work on Android?", history)

    assert condensed == "Does Slack work on Android?"


async def test_rule_based_condenser_passes_its_ignored_terms_on() -> None:
    history = [HistoryTurn("Does Harbor support SSO?", "Yes, on Business and Enterprise.")]

    condensed = await RuleBasedCondenser(ignored_terms=["harbor"]).condense(
        "how do I turn it on?", history
    )

    assert condensed == "How do I turn SSO on?"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("  How much does the Team plan cost?\n", "How much does the Team plan cost?"),
        ('Standalone question: "How much is Slack?"', "How much is Slack?"),
        ("standalone question:\n“Is SSO on Business?”\n\nI kept the names.", "Is SSO on Business?"),
        ("Question: 'Does the API have rate limits?'", "Does the API have rate limits?"),
        (" \n \n", ""),
    ],
)
def test_clean_reply_keeps_only_the_question(reply: str, expected: str) -> None:
    assert clean_reply(reply) == expected


# --- the provider path, against a local server speaking OpenAI's protocol ------------------------


@pytest.fixture
def fake() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as server:
        yield server


@pytest.fixture
async def provider(fake: FakeOpenAIServer) -> AsyncIterator[OpenAIProvider]:
    built = OpenAIProvider(
        ProviderOptions(
            api_key=API_KEY,
            base_url=fake.url,
            max_retries=0,
            timeout_seconds=5.0,
            connect_timeout_seconds=2.0,
        )
    )
    yield built
    await built.aclose()


class RecordingCondenser:
    """A fallback that says what it was asked and answers with a marked question."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    async def condense(self, question: str, history: Sequence[HistoryTurn]) -> str:
        self.calls.append((question, len(history)))
        return f"fallback: {question}"


def test_request_carries_the_message_as_question_and_no_sources(
    provider: OpenAIProvider,
) -> None:
    fallback: Condenser = RecordingCondenser()
    condenser = ProviderCondenser(provider, PromptLibrary(), fallback=fallback)

    request = condenser.request("and how much does it cost?", [SLACK_TURN])

    assert request.question == "and how much does it cost?"
    assert request.sources == ()
    assert [message.role for message in request.messages] == ["user"]


async def test_provider_reply_is_cleaned_and_returned(
    fake: FakeOpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(
        Stream(("Standalone question: ", '"How much does the ', 'Slack integration cost?"'))
    )
    fallback = RecordingCondenser()
    condenser = ProviderCondenser(provider, PromptLibrary(), fallback=fallback)

    condensed = await condenser.condense("and how much does it cost?", [SLACK_TURN])

    assert condensed == "How much does the Slack integration cost?"
    assert fallback.calls == []


async def test_request_is_one_user_message_with_recent_history_and_short_answers(
    fake: FakeOpenAIServer, provider: OpenAIProvider
) -> None:
    fake.script(Stream(("How much does the Slack integration cost?",)))
    history = [
        HistoryTurn("How do I reset my password?", "Open the sign-in page."),
        HistoryTurn("How do I export my data?", "Open Settings > Account > Export."),
        HistoryTurn(SLACK_TURN.question, "The Slack integration is available. " * 40),
    ]
    condenser = ProviderCondenser(provider, PromptLibrary(), max_history_turns=2)

    await condenser.condense("and how much does it cost?", history)

    [sent] = fake.requests
    [message] = sent.body["messages"]
    assert message["role"] == "user"
    prompt = message["content"]
    assert "reset my password" not in prompt  # older than the last two turns
    assert "User: How do I export my data?" in prompt
    assert "Assistant: Open Settings > Account > Export." in prompt
    assert f"User: {SLACK_TURN.question}" in prompt
    assert prompt.count("The Slack integration is available.") < 10  # the long answer is cut
    assert prompt.rstrip().endswith("and how much does it cost?")
    assert "$" not in prompt  # every placeholder was filled


async def test_first_turn_does_not_call_the_provider(
    fake: FakeOpenAIServer, provider: OpenAIProvider
) -> None:
    condenser = ProviderCondenser(provider, PromptLibrary())

    assert await condenser.condense("How much does Slack cost?", []) == "How much does Slack cost?"
    assert fake.requests == []


@pytest.mark.parametrize(
    "failure",
    [
        Fail(401, f"Incorrect API key provided: {API_KEY[:12]}****", "invalid_request_error"),
        Fail(500),
    ],
    ids=["401", "500"],
)
async def test_provider_errors_fall_back_to_the_rules_with_a_warning(
    failure: Fail,
    fake: FakeOpenAIServer,
    provider: OpenAIProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.script(failure)
    condenser = ProviderCondenser(provider, PromptLibrary())

    with caplog.at_level(logging.WARNING, logger="assistant.chat.condense"):
        condensed = await condenser.condense("and how much does it cost?", [SLACK_TURN])

    assert condensed == "How much does the Slack integration cost (plans include)?"
    assert len(fake.requests) == 1
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "openai" in record.getMessage()
    assert API_KEY[:12] not in caplog.text


@pytest.mark.parametrize(
    "deltas",
    [(), ("  ", "\n", '""'), ("How much does it cost? " * 60,)],
    ids=["empty", "blank-and-quotes", "over-long"],
)
async def test_unusable_replies_fall_back(
    deltas: tuple[str, ...],
    fake: FakeOpenAIServer,
    provider: OpenAIProvider,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.script(Stream(deltas))
    fallback = RecordingCondenser()
    condenser = ProviderCondenser(provider, PromptLibrary(), fallback=fallback, max_chars=200)

    with caplog.at_level(logging.WARNING, logger="assistant.chat.condense"):
        condensed = await condenser.condense("and how much does it cost?", [SLACK_TURN])

    assert condensed == "fallback: and how much does it cost?"
    assert fallback.calls == [("and how much does it cost?", 1)]
    assert "using the fallback" in caplog.text


@pytest.mark.parametrize(("max_history_turns", "max_chars"), [(0, 500), (6, 0)])
def test_limits_below_one_are_refused(
    max_history_turns: int, max_chars: int, provider: OpenAIProvider
) -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ProviderCondenser(
            provider, PromptLibrary(), max_history_turns=max_history_turns, max_chars=max_chars
        )


# --- real retrieval over the sample help centre ------------------------------------------------


@pytest.mark.slow
async def test_condensed_follow_ups_retrieve_the_right_page_where_the_raw_ones_do_not(
    make_assistant: Callable[..., Assistant],
) -> None:
    assistant = make_assistant()
    # The published pages and documents; drafts/ is kept out of the site by robots.txt.
    published = sorted(HELP_CENTRE.glob("site/*.html")) + sorted(HELP_CENTRE.glob("docs/*"))
    report = assistant.ingest([str(path) for path in published], kb="default")
    assert {outcome.status for outcome in report.outcomes} == {"added"}
    condenser = RuleBasedCondenser(ignored_terms=["Harbor"])
    # (first question, follow-up, page that answers it, the section it answers in)
    conversations = [
        (
            "Does Harbor support two-factor authentication?",
            "how do I turn it on?",
            "security.html",
            "Two-factor authentication (2FA)",
        ),
        (
            "Which plans have the audit log?",
            "and how long is it kept?",
            "admin-guide.docx",
            "Retention",
        ),
    ]

    for first, follow_up, page, section in conversations:
        raw_top = assistant.search(follow_up, k=5).hits[0]
        condensed = await condenser.condense(follow_up, [HistoryTurn(first, "")])
        condensed_top = assistant.search(condensed, k=5).hits[0]

        assert not raw_top.url.endswith(page), (follow_up, raw_top.url)
        assert condensed_top.url.endswith(page), (condensed, condensed_top.url)
        assert condensed_top.heading_path[-1] == section, (condensed, condensed_top.heading_path)

    # "How much does it cost?" after "Which plans include the Slack integration?" asks for the
    # price of those plans: the condensed question keeps the cost and the subject, finds the
    # pricing as well as the integration, and the answer quotes the pricing, not the first
    # answer again.
    first = await drain(SLACK_TURN.question, assistant.stream(SLACK_TURN.question))
    follow_up = "and how much does it cost?"
    follow = await drain(
        follow_up, assistant.stream(follow_up, conversation_id=first.conversation_id)
    )
    assert "cost" in follow.standalone_question and "Slack" in follow.standalone_question
    pricing = ("billing.html", "pricing-sheet.pdf")
    assert any(hit.url.endswith(pricing) for hit in follow.sources[:3]), follow.sources
    assert any(citation.url.endswith(pricing) for citation in follow.citations), follow.answer
    assert follow.answer != first.answer

    # The raw cost question lands on generic pricing that never mentions the integration.
    raw_cost_top = assistant.search("and how much does it cost?", k=5).hits[0]
    assert "slack" not in raw_cost_top.text.lower()
