"""Masking of personal data (emails, phone numbers, card-like numbers) in analytics views.

Visitors paste contact details and payment numbers into chats; a report or an export shows what
people ask without repeating those. Masking is on by default (``AnalyticsOptions.mask``).
"""

from __future__ import annotations

import re

__all__ = ["EMAIL_MASK", "NUMBER_MASK", "PHONE_MASK", "mask_personal_data"]

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"
NUMBER_MASK = "[card]"

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# 13-19 digits in groups (spaces or dashes): the lengths of payment card numbers.
_CARD = re.compile(r"(?<![\d-])(?:\d[ -]?){12,18}\d(?![\d-])")
# A phone number: optional +country, then 7-15 digits with spaces, dots, dashes or brackets.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d(?:[\s.-]?\d){6,13}(?!\w)"
)


def mask_personal_data(text: str) -> str:
    """``text`` with emails, card-like numbers and phone numbers replaced by placeholders.

    Card numbers are matched before phone numbers, since a phone pattern would also take them.

    >>> mask_personal_data("mail jo@example.com or call +44 20 7946 0958")
    'mail [email] or call [phone]'
    >>> mask_personal_data("card 4111 1111 1111 1111 expired")
    'card [card] expired'
    """
    text = _EMAIL.sub(EMAIL_MASK, text)
    text = _CARD.sub(NUMBER_MASK, text)
    return _PHONE.sub(PHONE_MASK, text)
