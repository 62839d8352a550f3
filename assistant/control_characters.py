"""Removal of terminal control characters from text that people typed.

Visitors' questions are stored and later shown to operators in a terminal (``assistant gaps``,
``assistant report``) and to owners in the admin console. A question holding ``ESC`` sequences
or an OSC title string would clear the operator's screen or fake output; a right-to-left override
would make the text read differently from what is stored. So stored user text drops them once, at
the point where it is recorded, and the command line drops them again before printing anything
that came from storage (older rows, page titles, source paths).
"""

from __future__ import annotations

import re

__all__ = ["strip_control_characters"]

# C0 controls except tab and newline, DEL, the C1 controls (8-bit CSI/OSC among them), and the
# bidirectional embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069) that reorder
# what a reader sees. Carriage returns go too: a bare one rewrites the line a terminal shows.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def strip_control_characters(text: str) -> str:
    """``text`` without control characters, keeping newlines and tabs.

    >>> strip_control_characters("a\\x1b[2Jb\\x00c\\u202ed\\n\\te")
    'a[2Jbcd\\n\\te'
    """
    return _CONTROL.sub("", text)
