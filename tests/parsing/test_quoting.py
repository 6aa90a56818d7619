"""strip_quoted and excerpt: hand-made pairs plus the zapier and crisp reply-parser corpora."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailmentor.parsing.quoting import (
    _WROTE,
    ends_with_wrote,
    excerpt,
    is_attribution,
    is_signature_start,
    strip_quoted,
)
from tests.parsing._support import corpus


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ""),
        ("Done!", "Done!"),
        ("acted\r\n\r\n> reminder text\r\n> more", "acted"),
        ("Thanks!\n\nOn Mon, Jan 5, 2026 at 9:14 AM Alan <a@x.org> wrote:\n> old", "Thanks!"),
        ("Thanks!\nOn Mon, Jan 5, 2026 at 9:14 AM Alan Kay\n<a@x.org> wrote:\n\n> old", "Thanks!"),
        ("Top\n\n-----Original Message-----\nFrom: A\nSent: now\n\nold", "Top"),
        (
            "Top\n\n________________________________\nFrom: A <a@x.org>\nSent: x\nTo: b@y.org\n",
            "Top",
        ),
        ("Note\n\n---------- Forwarded message ---------\nFrom: A <a@x.org>\n", "Note"),
        (
            "Note\n\nBegin forwarded message:\n\n> From: A <a@x.org>\n> Subject: s\n> Date: d\n",
            "Note",
        ),
        ("Hi\n\n-- \nGrace\nCTO", "Hi"),
        ("Hi\n--\nGrace", "Hi"),
        ("Hi\n\nSent from my iPhone", "Hi"),
        ("Hi\n\nSent from my desk, which is easier.", "Hi\n\nSent from my desk, which is easier."),
        ("a -- b is not a signature", "a -- b is not a signature"),
        ("> a long quoted line cut\nin two\n> by a client\n\nanswer", "answer"),  # wrapped quote
        ("> q1\n\nanswer 1\n\n> q2\n\nanswer 2", "answer 1\n\nanswer 2"),  # inline replies
        (
            "On the other hand, fine.\n\nOn average: good.",
            "On the other hand, fine.\n\nOn average: good.",
        ),
        ("Call me at 10:30:\n555 1234", "Call me at 10:30:\n555 1234"),
        (
            "From: my side, all good\nTo: be honest, yes",
            "From: my side, all good\nTo: be honest, yes",
        ),
        ("\ufeffdone\n\n\n\n\nmore", "done\n\nmore"),
    ],
)
def test_strip_quoted(text: str, expected: str) -> None:
    assert strip_quoted(text) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("On Mon, Jan 5, 2026 at 9:14 AM Alan Kay <alan@example.com> wrote:", True),
        ("On 03/11/2021 15:51, John Doe wrote:", True),
        ("Am 28.10.2021 um 12:46 schrieb John Doe <j@x.de>:", True),
        ("Le 28/10/2021 12:46, « John Doe » <john.doe@acme.com> a écrit :", True),
        ('30.09.2017, 18.30, "John - Doe" <s@saas.com>:', True),
        ("---- On Wed, 24 Feb 2021 14:02:50 +0530 john@gmail.com wrote ----", True),
        ("I wrote:", False),
        ("Here is the plan for 2026:", False),
        ("Check https://example.com/on-date-someone-wrote-about-parsing", False),
    ],
)
def test_is_attribution(line: str, expected: bool) -> None:
    assert is_attribution(line) is expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("-- ", True),
        ("--", True),
        ("Sent from my iPhone", True),
        ("Sent from my Verizon Wireless BlackBerry", True),
        ("Get Outlook for iOS<https://aka.ms/o0ukef>", True),
        ("Von meinem iPhone gesendet", True),
        ("Sent from my desk, is much easier then my mobile phone.", False),
        ("The notification was sent from my iPhone app to all users.", False),
        ("-- first point", False),
    ],
)
def test_is_signature_start(line: str, expected: bool) -> None:
    assert is_signature_start(line) is expected


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 600, "short"),
        ("a  b\n c\n\n\n d", 600, "a b c\n\nd"),
        ("one two three four", 10, "one two…"),
        ("one two three four", 18, "one two three four"),
        ("abcdefghijklmnop", 8, "abcdefg…"),
        ("", 600, ""),
        ("word, another", 9, "word…"),
    ],
)
def test_excerpt(text: str, limit: int, expected: str) -> None:
    result = excerpt(text, limit)
    assert result == expected
    assert len(result) <= limit


# --- zapier/email-reply-parser: the expectations of its own test suite ---------------------------

ZAPIER_CASES = [
    ("email_1_2", ["You can list the keys for the bucket"], ["> Hi folks", "wrote:"]),
    ("email_1_3", ["Oh thanks.", "-Abhishek Kona"], ["Russell Brown"]),
    ("email_1_4", ["Awesome!"], ["Loader"]),
    ("email_1_6", ["I get proper rendering"], ["Corey Donohoe", "Was this caching"]),
    ("email_1_7", [":+1:"], ["Steps 0-2"]),
    ("email_1_8", ["I will reply under this one", "and under this."], ["Hey there", "okay?"]),
    ("email_2_1", ["Outlook with a reply"], ["Google Apps Sync"]),
    ("email_2_2", ["Outlook with a reply directly above line"], ["CRM Comments"]),
    ("email_2_3", ["Outlook with a reply above headers"], ["Kim via Site"]),
    ("email_iPhone", ["Here is another email"], ["Sent from my iPhone"]),
    ("email_BlackBerry", ["Here is another email"], ["Sent from my BlackBerry"]),
    ("email_multi_word_sent_from_my_mobile_device", ["Here is another email"], ["Verizon"]),
    ("email_sent_from_my_not_signature", ["Sent from my desk, is much easier"], []),
    ("email_one_is_not_on", ["One outstanding question"], ["Dave Tapley wrote"]),
    ("email_gmail", ["This is a test for inbox"], ["notifications@github.com", "outdated"]),
    ("email_headers_no_delimiter", ["And another reply!"], ["Dan Watson", "A reply"]),
    ("email_sig_delimiter_in_middle_of_line", ["this is not a signature.", "kthxbai"], []),
    ("correct_sig", ["correct -- signature."], ["rick"]),
    ("greedy_on", ["On your remote host you can run:", "tunnel is not working."], ["George"]),
    ("email_partial_quote_header", ["On your remote host"], ["George Plymale"]),
    ("pathological", ["I think you're onto something."], ["John Sullivan", "reference"]),
    ("email_bullets", ["- how about bullets", "- and another"], ["Give us an example", "Joe"]),
]


@pytest.mark.parametrize(("name", "present", "absent"), ZAPIER_CASES)
def test_zapier_corpus(name: str, present: list[str], absent: list[str]) -> None:
    text = (corpus("zapier-email-reply-parser") / f"{name}.txt").read_text(encoding="utf-8")
    reply = strip_quoted(text)
    for piece in present:
        assert piece in reply
    for piece in absent:
        assert piece not in reply


# --- crisp-oss/email-reply-parser: files whose first fragment is a known paragraph ---------------

COMMON_FIRST_FRAGMENT = (
    "Fusce bibendum, quam hendrerit sagittis tempor, dui turpis tempus erat, pharetra sodales "
    "ante sem sit amet metus.\nNulla malesuada, orci non vulputate lobortis, massa felis pharetra "
    "ex, convallis consectetur ex libero eget ante.\nNam vel turpis posuere, rhoncus ligula in, "
    "venenatis orci. Duis interdum venenatis ex a rutrum.\nDuis ut libero eu lectus consequat "
    "consequat ut vel lorem. Vestibulum convallis lectus urna,\net mollis ligula rutrum quis. "
    "Fusce sed odio id arcu varius aliquet nec nec nibh."
)
CRISP_COMMON = (
    "email_7", "email_8", "email_9", "email_10", "email_11", "email_12", "email_13", "email_14",
    "email_15", "email_16", "email_17", "email_18", "email_22", "email_23", "email_24",
    "email_25", "email_26", "email_portuguese", "email_german", "email_german_2",
    "email_german_3", "email_german_outlook", "email_norwegian_gmail", "email_finnish",
    "email_italian", "email_russian", "email_outlook_split_line_from",
    "email_gmail_split_line_from", "email_ios_outlook_fr", "email_ios_outlook", "email_msn",
    "email_fr_multiline", "email_french_2", "email_en_multiline_2", "email_original_message",
    "email_original_message_2", "email_danish_dash_separator", "email_french_dash_separator",
    "email_tricky_5_mixed_languages", "email_tricky_10_special_chars_in_name",
    "email_tricky_12_no_space_after_header", "email_tricky_14_long_quote_header",
    "email_tricky_15_original_message_variations",
)  # fmt: skip


@pytest.mark.parametrize("name", CRISP_COMMON)
def test_crisp_first_fragment(name: str) -> None:
    text = (corpus("crisp-email-reply-parser") / f"{name}.txt").read_text(encoding="utf-8")
    assert strip_quoted(text) == COMMON_FIRST_FRAGMENT


CRISP_CASES = [
    ("email_1", ["-Abhishek Kona"], ["riak-users mailing list"]),
    ("email_2", ["You can list the keys"], ["Hi folks"]),
    ("email_3", ["Oh thanks."], ["Russell Brown"]),
    ("email_6", ["I get proper rendering"], ["Corey Donohoe"]),
    ("email_sent_from", ["Hi it can happen to any texts you type"], ["TypeApp", "Valerian"]),
    ("email_zoho", ["running a test?"], ["john@gmail.com", "Java sucks"]),
    ("email_thread", ["This is new email reply"], ["On Nov 21, 2014", "Jim Beam"]),
    ("email_reply_header", ["it could happen TWICE!"], ["mrmister", "Mister Example"]),
    ("email_tricky_1_on_false_positive", ["On average, this parser works well.", "separate"], []),
    ("email_tricky_2_url_with_wrote", ["Check out this article", "https://example.com"], []),
    ("email_tricky_3_code_block", ["function sendEmail", "Notice how the code"], []),
    ("email_tricky_4_from_in_body", ["This is the actual message content."], []),
    ("email_tricky_6_regards_in_sentence", ["with regards to the payment"], []),
    ("email_tricky_7_multiple_dashes", ["Key Points"], []),
    ("email_tricky_8_sent_from_in_content", ["sent from my iPhone app", "main server"], []),
    ("email_tricky_9_nested_quotes", ["I agree with the points"], []),
    ("email_tricky_11_double_signature", ["Thanks for your help"], ["Senior Developer"]),
    ("email_tricky_13_timestamp_variations", ["Jan 15, 2024 at 14:30", "not quote headers"], []),
    ("email_tricky_17_forward_header", ["See the forwarded message"], []),
    ("email_tricky_19_quote_without_header", ["I wanted to respond"], []),
    ("email_tricky_20_html_entities", ["&gt; 100 and &lt; 200"], []),
]


@pytest.mark.parametrize(("name", "present", "absent"), CRISP_CASES)
def test_crisp_cases(name: str, present: list[str], absent: list[str]) -> None:
    text = (corpus("crisp-email-reply-parser") / f"{name}.txt").read_text(encoding="utf-8")
    reply = strip_quoted(text)
    for piece in present:
        assert piece in reply
    for piece in absent:
        assert piece not in reply


# --- ends_with_wrote: the fast form of the attribution regex ------------------------------------

_WROTE_PIECES = [
    "wrote", "WROTE", "Wrote the following", "schrieb", "a écrit", "napisał(a)", "написал(а)",
    "kirjoitti", "Kirjoitti 12.3.2019 klo 10.15", "skrev følgende den 3. mar", "skrev følgende",
    "写道", "님이 작성", "ezt írta", "şunu yazdı", "a", "ſkrev", "K", "İ", "k", "\u212a",
]  # fmt: skip
_WROTE_GLUE = [" ", "  ", ":", "：", "\n", "\t", "\u00a0", ",", "-", "x", ">", " : ", "::"]


@given(
    st.lists(
        st.sampled_from(_WROTE_PIECES) | st.sampled_from(_WROTE_GLUE) | st.text(max_size=6),
        max_size=8,
    ).map("".join)
)
@settings(max_examples=3000, deadline=None)
def test_ends_with_wrote_is_the_attribution_regex(text: str) -> None:
    assert ends_with_wrote(text) == bool(_WROTE.search(text))


@pytest.mark.parametrize(
    "text",
    [
        "On Mon, Alan <a@b.c> wrote:",
        "Alan kirjoitti 12.3.2019 klo 10.15:",
        "Den 3. mar. 2020 skrev Alan følgende den 3. mar 2020 kl. 10:",
        "Am 3. März schrieb Alan :  \n",
        "Le 3 mars, Alan a écrit：",
        "wrote",
        "i wrote it down",
        "wrote:\n\n",
    ],
)
def test_ends_with_wrote_on_attributions(text: str) -> None:
    assert ends_with_wrote(text) == bool(_WROTE.search(text))
