"""The public side of an assistant's brand, with its colour made readable.

Only presentation fields leave the server (never tone, instructions, provider or limits), and
the brand colour is checked at configuration time: where white (or, failing that, near-black)
text on it would be under WCAG AA's 4.5:1, the colour is darkened step by step until white
text passes.

>>> readable_colours("#2563eb")
('#2563eb', '#ffffff')
>>> readable_colours("#ffeb3b")
('#ffeb3b', '#111827')
"""

from __future__ import annotations

from assistant.api.schemas import WidgetPublic
from assistant.assistants import BrandConfig
from assistant.engagement_config import HandoffConfig, LeadFormConfig

__all__ = ["AA_CONTRAST", "contrast", "public_widget", "readable_colours"]

AA_CONTRAST = 4.5
"""WCAG 2 AA minimum contrast ratio for normal text."""

_WHITE = "#ffffff"
_INK = "#111827"


def _rgb(colour: str) -> tuple[int, int, int]:
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


def _luminance(colour: str) -> float:
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two hex colours (1 to 21).

    >>> round(contrast("#000000", "#ffffff"), 1)
    21.0
    """
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def readable_colours(colour: str) -> tuple[str, str]:
    """``(background, text)``: ``colour`` (as ``#rrggbb``) with white or dark text when either
    reaches AA, else ``colour`` darkened until white text does."""
    r, g, b = _rgb(colour)
    background = f"#{r:02x}{g:02x}{b:02x}"
    if contrast(background, _WHITE) >= AA_CONTRAST:
        return background, _WHITE
    if contrast(background, _INK) >= AA_CONTRAST:
        return background, _INK
    for step in range(1, 21):
        factor = 1 - step * 0.05
        darker = f"#{int(r * factor):02x}{int(g * factor):02x}{int(b * factor):02x}"
        if contrast(darker, _WHITE) >= AA_CONTRAST:
            return darker, _WHITE
    return "#000000", _WHITE


def public_widget(
    name: str,
    brand: BrandConfig,
    handoff: HandoffConfig | None = None,
    lead_form: LeadFormConfig | None = None,
) -> WidgetPublic:
    """What a web page may know about assistant ``name``: presentation fields, whether a
    person can be asked for, and the lead form (never the webhook or its secret)."""
    background, text = readable_colours(brand.primary_colour)
    return WidgetPublic(
        name=name,
        display_name=brand.display_name or name,
        greeting=brand.greeting,
        suggested_questions=brand.suggested_questions,
        logo_url=str(brand.logo_url) if brand.logo_url else None,
        primary_colour=background,
        on_primary_colour=text,
        position=brand.position,
        z_index=brand.z_index,
        language=brand.language,
        handoff=handoff is not None and handoff.enabled,
        handoff_confirmation=handoff.confirmation if handoff is not None else "",
        lead_form=lead_form if lead_form is not None and lead_form.enabled else None,
    )
