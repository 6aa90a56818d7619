"""The report-back starter quotes only the advice's substance, and ends its sentence about the
subject with one mark: (input, expected) pairs, pure rendering."""

from __future__ import annotations

import pytest

from mailmentor.model import Stage
from mailmentor.reminders import report_draft_text
from mailmentor.reminders.drafts import advice_substance, sentence_end
from tests.reminders._support import make_ctx, make_loop

ADVICE = "Cut it to three plans and show the annual price first."


@pytest.mark.parametrize(
    ("excerpt", "expected"),
    [
        (f"Hi Ada,\n\n{ADVICE}\n\nBest,\nAlan", ADVICE),
        (f"Hi Ada,\n\n{ADVICE}\n\nBest, Alan", ADVICE),  # as the stored excerpt joins lines
        (f"Hi Ada, {ADVICE[0].lower()}{ADVICE[1:]} Best, Alan", ADVICE),
        (f"Dear Ada,\n{ADVICE}\n\nCheers\nAlan Kay\n-- \nVPRI\nhttp://vpri.org", ADVICE),
        (f"{ADVICE}\n\n-- Alan Kay VPRI http://vpri.org", ADVICE),
        (f"{ADVICE}\n\nAlan", ADVICE),
        (f"{ADVICE}\nA. Kay", ADVICE),
        (f"{ADVICE}\n\nThanks, Alan Kay\n\nSent from my iPhone", ADVICE),
        (f"{ADVICE} Kind regards, Alan", ADVICE),
        ("Hallo Ada,\n\nDrei Tarife.\n\nViele Grüße\nAlan", "Drei Tarife."),
        ("Bonjour Ada,\n\nTrois offres.\n\nCordialement,\nAlan", "Trois offres."),
        ("Hola Ada:\n\nTres planes.\n\nSaludos,\nAlan\n\nEnviado desde mi iPhone", "Tres planes."),
        # Substance stays, however it starts or ends.
        ("Charge more.\nOffer three plans.", "Charge more.\nOffer three plans."),
        ("Best practice: annual first.", "Best practice: annual first."),
        ("Charge more.\nUse Stripe.", "Charge more.\nUse Stripe."),
        ("Charge more.\n\nThanks for asking!", "Charge more.\n\nThanks for asking!"),
        ("Hi Ada,\n\nBest, Alan", "Hi Ada,\n\nBest, Alan"),  # nothing else: kept as it was
        ("", ""),
    ],
)
def test_advice_substance(excerpt: str, expected: str) -> None:
    assert advice_substance(excerpt) == expected


@pytest.mark.parametrize(
    ("subject", "end"),
    [
        ("Pricing page", "."),
        ("Should I learn COBOL?", ""),
        ("Help!", ""),
        ("Notes on v2.", ""),
        ("Which one…", ""),
        ("“Why?”", ""),
        ("Pricing (v2)", "."),
    ],
)
def test_sentence_end(subject: str, end: str) -> None:
    assert sentence_end(subject) == end


def test_the_starter_quotes_the_substance_and_ends_the_subject_once() -> None:
    loop = make_loop(
        stage=Stage.ACTED,
        subject="Should I learn COBOL?",
        advice_excerpt="Hi Ada,\n\nYes: banks still run on it.\n\nBest,\nAlan\n-- \nAlan Kay, VPRI",
    )
    text = report_draft_text(loop, make_ctx())
    assert "Thanks again for your advice on Should I learn COBOL? You suggested:" in text
    assert "?." not in text
    assert "> Yes: banks still run on it.\n\nWhat I did:" in text
    assert "Hi Ada" not in text and "Best" not in text and "VPRI" not in text
    assert text.startswith("Hi Alan,\n")  # the user's own greeting stays


def test_the_starter_without_advice_ends_the_subject_once() -> None:
    loop = make_loop(stage=Stage.ACTED, subject="Should I learn COBOL?", advice_excerpt="")
    assert "Thanks again for your advice on Should I learn COBOL?\n" in report_draft_text(
        loop, make_ctx()
    )
