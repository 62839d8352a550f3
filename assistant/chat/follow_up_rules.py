"""The rules that rewrite a follow-up into a standalone question without a model.

A follow-up such as "and how much does it cost?" names its topic only through the previous
question. ``rewrite_follow_up`` finds that topic with word lists and a few patterns (pronouns,
leading connectives, names, "what if ...") and puts it back; ``condense.RuleBasedCondenser``
applies it to a conversation.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from assistant.knowledge.unknown_names import is_name

__all__ = ["rewrite_follow_up"]


def _word_set(words: str) -> frozenset[str]:
    """The blank-separated words of ``words`` (keeps long word lists readable)."""
    return frozenset(words.split())


# Function words: they never name a topic. Question words, auxiliaries, pronouns, determiners,
# prepositions and conjunctions, plus the quantity words of "how much" / "how long".
_STOPWORDS = _word_set(
    """
    a about after again all also am an and any are as at be been before being both but by can
    could did do does doing done during each either else even ever for from had has have having
    he her here hers him his how i if in into is it its itself just me might mine more most much
    many long my no nor not now of off on once only or other our ours out over own please same
    shall she should so some such than thank thanks that the their theirs them then there these
    they this those through to too under until up very via was we were what when where which
    while who whom whose why will with within without would yes yet you your yours
    above across against along among around behind below beneath beside besides between beyond
    despite inside like near onto outside past per since toward towards underneath unlike upon
    """
)

# Common help-centre verbs. They are content words, but never part of a topic's noun phrase:
# "How much does the Team plan cost?" is about "the Team plan", not "Team plan cost".
_ACTION_WORDS = _word_set(
    """
    add added buy cancel change changed configure connect connected cost costs create delete
    disable download enable export find get gets give include included includes install invite
    keep kept know let like make need needs open pay remove reset run see set show sign start
    stop support supports switch take try turn update upgrade downgrade upload use used using
    want work works
    """
)

# Verbs whose object is the previous action rather than its topic ("how do I undo it?").
_ACTION_REFERENCES = _word_set("undo undone revert reverse cancel redo repeat retry stop recover")

# Verbs of an event, in the forms that follow a subject "it" ("before it actually happens",
# "it stopped halfway"): that "it" is the previous question's activity (the deletion, the
# rebase), not its object, so naming the object in its place would change the question.
_EVENT_VERBS = _word_set(
    """
    happens happened occurs occurred stops stopped fails failed finishes finished ends ended
    breaks broke crashes crashed hangs hung freezes froze aborts aborted completes completed
    succeeds succeeded goes went gets got
    """
)

_DETERMINERS = frozenset({"the", "a", "an", "my", "our", "your"})
_PERSONAL_PRONOUNS = frozenset({"it", "they", "them"})
_POSSESSIVE_PRONOUNS = frozenset({"its", "their"})
_DEMONSTRATIVES = frozenset({"this", "that", "these", "those"})
_BE_VERBS = frozenset({"is", "are", "was", "were"})
# Prepositions that start an adjunct of the question rather than its topic ("of" does not: "the
# price of the Team plan" is about the plan).
_ADJUNCT_PREPOSITIONS = _word_set(
    "about after as at before by during for from in inside into on onto over through to"
    " under via with within without"
)
_SUBJECTS = frozenset({"i", "we", "you"})
_PREPOSITIONS = frozenset({"on", "in", "for", "with", "without", "at", "from", "by", "via", "to"})

# A leading connective marks a follow-up; "what about X" / "how about X" ask the previous
# question again about X.
_CONNECTIVE = re.compile(
    r"^\s*(?P<connective>what about|how about|and|also|so|but|plus)\b[\s,:;]*", re.IGNORECASE
)
# "and", "so" and "but" go on with the previous question's subject ("and how do I make a debug
# build?" after a question about configure options); "also" and "plus" as often add a new one.
_CONTINUING_CONNECTIVES = frozenset({"and", "so", "but"})
# A variation on the previous question ("what if that commit is a merge?"), or a message that
# ends by pointing back at it ("... instead?", "... too?", "... then?").
_VARIATION = re.compile(r"^\s*what\s+(?:if|happens\s+(?:if|when))\b", re.IGNORECASE)
_POINTS_BACK = re.compile(
    r"\b(?:instead|too|as well|either|then|before|afterwards|later|again)\W*$", re.IGNORECASE
)
# The end of the previous question's activity ("when I'm done, how do I get back?").
_ONCE_DONE = re.compile(
    r"\b(?:when|once|after)\s+(?:I'm|I am|I've|I have|we're|we are|it's|it is|it has)\s+"
    r"(?:been\s+)?(?:done|finished|over|through)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"\w(?:[\w'’.-]*\w)?")
_SHORT_MESSAGE_WORDS = 3


class _Word:
    """One word of a message with its position, so a rewrite can splice the original text."""

    __slots__ = ("end", "lower", "start", "text")

    def __init__(self, match: re.Match[str]) -> None:
        self.text = match.group()
        self.lower = self.text.lower()
        self.start = match.start()
        self.end = match.end()


def _words(text: str) -> list[_Word]:
    return [_Word(match) for match in _WORD.finditer(text)]


def _is_topic_word(word: _Word, ignored: Collection[str]) -> bool:
    return (
        word.lower not in _STOPWORDS
        and word.lower not in _ACTION_WORDS
        and word.lower not in ignored
    )


def _noun_phrase(question: str, ignored: Collection[str]) -> str | None:
    """The main noun phrase of ``question``: its longest run of topic words (first on a tie).

    The run keeps a determiner just before it ("the Team plan"). Runs made only of ``ignored``
    terms (the product name, present in most questions) are used only when nothing else is, and
    a run after a preposition such as "from" or "as" (an adjunct: "send an email from a Django
    view") only when no run outside one is left.
    """
    words = _words(question)
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for index, word in enumerate([*words, None]):
        # The word after "I", "we" or "you" is the question's verb ("how do I send ...").
        verb = index > 0 and words[index - 1].lower in _SUBJECTS
        inside = (
            word is not None
            and not verb
            and word.lower not in _STOPWORDS
            and word.lower not in _ACTION_WORDS
        )
        if inside and start is None:
            start = index
        elif not inside and start is not None:
            runs.append((start, index))
            start = None
    if not runs:
        return None

    def weight(run: tuple[int, int]) -> tuple[bool, bool, int, int]:
        has_topic = any(_is_topic_word(word, ignored) for word in words[run[0] : run[1]])
        before = run[0] - 1
        if before >= 0 and words[before].lower in _DETERMINERS:
            before -= 1
        adjunct = before >= 0 and words[before].lower in _ADJUNCT_PREPOSITIONS
        return (has_topic, not adjunct, run[1] - run[0], -run[0])

    first, end = max(runs, key=weight)
    if first > 0 and words[first - 1].lower in _DETERMINERS:
        first -= 1
    return question[words[first].start : words[end - 1].end]


def _content_words(text: str, exclude: Collection[str]) -> list[str]:
    seen: set[str] = set(exclude)
    kept: list[str] = []
    for word in _words(text):
        if word.lower not in _STOPWORDS and word.lower not in seen:
            seen.add(word.lower)
            kept.append(word.text)
    return kept


def _swap_name(
    rest: str, previous: str, ignored: Collection[str], *, connected: bool
) -> str | None:
    """The previous question about the name ``rest`` instead of its own last name, if ``rest``
    is only a name ("and MySQL?" after a question about PostgreSQL), else None.

    ``connected``: ``rest`` followed a connective, so its first word starts no sentence.
    """
    words = _words(_POINTS_BACK.sub("", _bare(rest)))
    if not words or len(words) > _SHORT_MESSAGE_WORDS:
        return None
    if not all(is_name(w.text, i == 0 and not connected) for i, w in enumerate(words)):
        return None
    name = rest[words[0].start : words[-1].end]
    # Runs of adjacent names ("Google Drive"), as (first, last) word indices.
    runs: list[tuple[int, int]] = []
    previous_words = _words(previous)
    for index, word in enumerate(previous_words):
        if not is_name(word.text, index == 0) or word.lower in ignored:
            continue
        if runs and runs[-1][1] == index - 1:
            runs[-1] = (runs[-1][0], index)
        else:
            runs.append((index, index))
    named = {word.lower for word in words}
    if not runs or any(word.lower in named for word in previous_words):
        return None
    first, last = previous_words[runs[-1][0]], previous_words[runs[-1][1]]
    return previous[: first.start] + name + previous[last.end :]


def _anaphora(words: Sequence[_Word]) -> tuple[int | None, bool]:
    """The index of the first pronoun that can be replaced, and whether any reference dangles.

    ``it``/``they``/``them``/``its``/``their`` refer back, except a placeholder "it" two words
    before "to" ("is it possible to export?"). ``this``/``that``/``these``/``those`` do when
    they stand alone (followed by a function word, an action word or nothing) and, for
    ``that``, not as a relative after a noun ("a plan that includes SSO"). ``there``
    does unless it is existential ("is there", "there are"); ``one`` does when no noun follows
    ("which one is cheaper?") and is never replaced. A demonstrative before a topic word
    ("that commit", "these files") refers back too, but names its own noun, so it is never
    replaced either.
    """
    replaceable: int | None = None
    dangling = False
    for index, word in enumerate(words):
        before = words[index - 1].lower if index > 0 else None
        after = words[index + 1].lower if index + 1 < len(words) else None
        standalone = after is None or after in _STOPWORDS or after in _ACTION_WORDS
        if word.lower in _PERSONAL_PRONOUNS or word.lower in _POSSESSIVE_PRONOUNS:
            # "is it possible to ...", "how long does it take to ...": a placeholder "it".
            placeholder = index + 2 < len(words) and words[index + 2].lower == "to"
            # "before it actually happens": the previous activity, which refers back without a
            # noun to put in its place.
            event = word.lower == "it" and not placeholder and _names_event(words, index)
            found = not (word.lower == "it" and placeholder) and not event
            dangling |= event
        elif word.lower in _DEMONSTRATIVES:
            # "a plan that includes SSO" is a relative clause; "use that file" is not.
            relative = (
                word.lower == "that"
                and before is not None
                and before not in _STOPWORDS
                and before not in _ACTION_WORDS
            )
            found = standalone and not relative
            dangling |= not standalone and not relative
        else:
            existential = before in _BE_VERBS or after in _BE_VERBS
            dangling |= (word.lower == "there" and not existential) or (
                word.lower in {"one", "ones"} and standalone
            )
            continue
        if found:
            dangling = True
            if replaceable is None:
                replaceable = index
    return replaceable, dangling


def _names_event(words: Sequence[_Word], index: int) -> bool:
    """Whether the "it" at ``index`` is the subject of an event verb, one adverb allowed
    between ("it stopped", "it actually happens")."""
    following = [word.lower for word in words[index + 1 : index + 3]]
    if following and following[0].endswith("ly") and len(following) > 1:
        following = following[1:]
    return bool(following) and following[0] in _EVENT_VERBS


def _bare(text: str) -> str:
    """``text`` without surrounding blanks and final punctuation."""
    return text.strip().rstrip("?.!").strip()


def _question(text: str) -> str:
    """``text`` as a question: first letter capitalised, one trailing question mark."""
    text = _bare(text)
    return text[:1].upper() + text[1:] + "?" if text else text


def _with_context(question: str, previous: str, ignored: Collection[str]) -> str:
    """``question`` followed by the words of ``previous`` it lacks, in brackets.

    The pronoun names the previous topic, but the rest of the previous question still says
    what the conversation is about: "Which plans include the Slack integration?" then "how
    much does it cost?" asks about the plans as much as the integration. The follow-up's own
    words stay first and whole, so its intent leads; the brackets only add the subject.
    """
    words = _words(question)
    present = {re.sub(r"['’]s$", "", word.lower) for word in words} | set(ignored)
    extra = _content_words(previous, present)
    # A verb alone adds only noise ("activate it" needs no "create"), unless the follow-up
    # refers to the previous action itself ("how do I undo it?" after "delete my account").
    refers_to_action = any(word.lower in _ACTION_REFERENCES for word in words)
    if not refers_to_action and all(word.lower() in _ACTION_WORDS for word in extra):
        return question
    return f"{_bare(question)} ({' '.join(extra)})" if extra else question


def rewrite_follow_up(message: str, previous: str, ignored: Collection[str] = ()) -> str:
    """``message`` rewritten to stand alone, given the ``previous`` standalone question.

    ``ignored`` terms (the product name) never make the previous question's topic when
    anything else can. The rules, in order:

    0. A message that is only a name ("and MySQL?", "what about uWSGI instead?") asks the
       previous question about that name in place of the previous question's last name.
    1. "what about X" / "how about X": the previous question asked about X instead, by putting
       X in place of its main noun phrase ("How much does the Team plan cost?" + "what about
       the Pro plan?" gives "How much does the Pro plan cost?"); X starting with a preposition
       is added to the previous question ("... on Android?").
    2. A pronoun referring back ("it", "its", "that", ...) is replaced by the previous
       question's main noun phrase, and the previous question's other content words follow
       in brackets ("Which plans include the Slack integration?" + "and how much does it
       cost?" gives "How much does the Slack integration cost (plans include)?"): the
       follow-up's intent leads, the subject of the conversation stays. A leading connective
       ("and", "also", "so", ...) is dropped.
    3. A very short message (at most three words, at most one topic word) that starts with a
       preposition is added to the previous question ("on Android?"). Any other follow-up (a
       leading connective with no topic of its own, a reference that could not be replaced, a
       very short message that is not an instruction like "reset my password") gets the
       previous question's content words appended.
    4. A message that goes on with the previous question's subject while naming a topic of its
       own (a leading "and", "so" or "but", "what if ...", "what happens if ...", "when I'm
       done", or a closing "instead", "too", "as well", "either", "then", "before", "later",
       "afterwards" or "again") gets the previous question's other content words in brackets,
       as in rule 2: "and how do I make a debug build?" after a question about configure options.
    5. Anything else is self-contained and returned unchanged, less a leading connective
       ("also, can I export notes as PDF?" starts a new subject).
    """
    if not _WORD.search(message):
        return message
    lowered_ignored = {term.lower() for term in ignored}
    connective_match = _CONNECTIVE.match(message)
    connective = connective_match.group("connective").lower() if connective_match else None
    rest = message[connective_match.end() :] if connective_match else message
    words = _words(rest)
    topic_words = [word for word in words if _is_topic_word(word, lowered_ignored)]
    noun_phrase = _noun_phrase(previous, lowered_ignored)
    replaceable, dangling = _anaphora(words)
    starts_with_preposition = bool(words) and words[0].lower in _PREPOSITIONS

    swapped = _swap_name(rest, previous, lowered_ignored, connected=connective is not None)
    if swapped is not None:
        return _question(swapped)
    if connective in {"what about", "how about"} and words and not dangling:
        if starts_with_preposition or noun_phrase is None:
            return _question(f"{_bare(previous)} {_bare(rest)}")
        return _question(previous.replace(noun_phrase, _bare(rest), 1))
    if replaceable is not None and noun_phrase is not None:
        pronoun = words[replaceable]
        # The previous turn introduced the topic, so "a desktop app" is now "the desktop app".
        replacement = re.sub(r"^(?:a|an)\s+", "the ", noun_phrase, flags=re.IGNORECASE)
        if pronoun.lower in _POSSESSIVE_PRONOUNS:
            replacement = f"{replacement}'s"
        resolved = rest[: pronoun.start] + replacement + rest[pronoun.end :]
        return _question(_with_context(resolved, previous, lowered_ignored))
    short = len(words) <= _SHORT_MESSAGE_WORDS and len(topic_words) <= 1
    imperative = bool(words) and words[0].lower in _ACTION_WORDS
    if short and starts_with_preposition:
        return _question(f"{_bare(previous)} {_bare(rest)}")
    if (connective and not topic_words) or dangling or (short and not imperative):
        exclude = {word.lower for word in words}
        context = " ".join(_content_words(previous, exclude))
        return _question(f"{_bare(rest)} {context}") if context else message
    goes_on = _VARIATION.match(rest) or _POINTS_BACK.search(rest) or _ONCE_DONE.search(rest)
    if connective in _CONTINUING_CONNECTIVES or goes_on:
        return _question(_with_context(rest, previous, lowered_ignored))
    if connective:
        return _question(rest)
    return message
