"""A terminal chat with an assistant over its HTTP API, using the Python client.

Answers stream in as they are written, followed by the sources they cite; each question
continues the conversation, so follow-ups ("and on mobile?") are understood. Type ``/new`` to
start a new conversation, ``/sources`` to see the passages the last answer was built from, and
``/quit`` (or Ctrl-D) to leave.

    assistant serve &                                   # the API on http://127.0.0.1:8000
    python examples/sdk_chat.py --kb help-centre --key sk_...

``--url`` and ``--key`` default to ``ASSISTANT_URL`` and ``ASSISTANT_API_KEY``; a local server
started without ``ASSISTANT_ADMIN_KEY`` needs no key.
"""

from __future__ import annotations

import argparse
import os
import sys

from assistant.chat.events import Source
from assistant.client import Client, ClientError


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Chat with an assistant in the terminal.")
    parser.add_argument("--url", default=os.environ.get("ASSISTANT_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--key", default=os.environ.get("ASSISTANT_API_KEY"))
    parser.add_argument("--kb", default="default", help="the assistant's name")
    return parser.parse_args()


def _answer(
    bot: Client, question: str, kb: str, conversation_id: str | None
) -> tuple[str | None, tuple[Source, ...]]:
    """Stream one answer to the terminal; return the conversation id and the sources."""
    sources: tuple[Source, ...] = ()
    for event in bot.stream(question, kb=kb, conversation_id=conversation_id):
        if event.type == "sources":
            conversation_id, sources = event.conversation_id, event.sources
        elif event.type == "text":
            print(event.text, end="", flush=True)
        elif event.type == "citations":
            print()
            for citation in event.citations:
                print(f"  [{citation.n}] {citation.title} — {citation.url}")
        elif event.type == "done":
            if event.outcome == "no_answer":
                print("  (nothing in the knowledge base answers this)")
        elif event.type == "error":
            print(f"\n  the answer stopped: {event.message}", file=sys.stderr)
    return conversation_id, sources


def main() -> int:
    """Read questions until the end of input; answer each in the same conversation."""
    options = _arguments()
    conversation_id: str | None = None
    sources: tuple[Source, ...] = ()
    with Client(options.url, options.key) as bot:
        print(f"Chatting with {options.kb!r} at {options.url}. /new, /sources, /quit.")
        while True:
            try:
                question = input("\n> ").strip()
            except EOFError:
                print()
                return 0
            if question in ("/quit", "/exit"):
                return 0
            if question == "/new":
                conversation_id, sources = None, ()
                print("(a new conversation)")
                continue
            if question == "/sources":
                for source in sources:
                    print(f"  [{source.n}] {source.title} ({source.score:.2f}) {source.url}")
                continue
            if not question:
                continue
            try:
                conversation_id, sources = _answer(bot, question, options.kb, conversation_id)
            except ClientError as error:
                print(f"  {error}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
