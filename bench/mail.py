"""Realistic mail for the benchmarks: what the service mailbox holds after months of use.

`corpus(count)` builds ``count`` messages (5–50 KB, log-uniform sizes) as the receiving server
stores them in the service's mailbox, with the loops they must leave behind:

- BCC'd asks from the user (``USER``) to one mentor, sometimes a second one in Cc (a loop each);
- forwards of the mentor's answer: Gmail ("---------- Forwarded message ---------"), Outlook
  (``From:/Sent:/To:/Subject:`` blocks, the history below them) and Apple Mail ("Begin forwarded
  message:") inline forwards, and the answer attached as ``message/rfc822``; the loop goes to
  ``advised``. Some forward mail that has no loop behind it (it starts one at ``advised``);
- the user's replies in the thread (In-Reply-To/References, the history quoted below);
- HTML alternatives (Gmail, Outlook and Apple Mail markup), small attachments (PDFs, images),
  full trace headers (Received, DKIM, ARC, Authentication-Results, the clients' own headers),
  non-ASCII names (RFC 2047) and bodies (quoted-printable);
- about 2% mail that must change nothing: newsletters from strangers, the user's auto-replies.

Threads overlap as they do in a real mailbox: an answer is forwarded some dozens of messages
after its ask, a reply later still, and the same mentors are asked again and again. Everything
is drawn from a seeded random generator, so a corpus is the same on every run.
"""

from __future__ import annotations

import base64
import binascii
import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, formataddr

from mailmentor.intake import loop_id_for

USER = "ada@example.com"
USER_NAME = "Ada Lovelace"
SERVICE = "mentor@example.com"

MIN_SIZE = 5_000
MAX_SIZE = 50_000
#: Positions (in messages) between an ask and its forward, and a forward and a reply, on average.
GAP = 40.0
START = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)

_VOCABULARY = (
    "the of and to a in is you that it for on are as with they at be this have from or one had "
    "by but not what all were we when your can said there use an each which do how their if "
    "will up other about out many then them these so some would make like into time has look "
    "two more write go see number no way could people my than first been call who its now find "
    "long down day did get come made may part price page plan customers pricing trial annual "
    "monthly churn conversion test measure week month team hire product market sales value "
    "offer cut three middle show numbers advice think try start simple focus users feedback "
    "launch growth funnel signup landing copy headline investors round seed board runway "
    "metrics cohort retention onboarding demo enterprise contract discount partner channel "
    "hiring engineer designer manager roadmap quarter goal budget forecast revenue margin cost "
    "interview candidate offer salary equity culture remote office meeting call notes draft "
    "proposal deck slide story narrative customer segment niche competitor positioning brand "
    "email newsletter blog talk conference workshop course book chapter paper research data "
    "analysis experiment result learn mistake lesson habit career promotion mentor coach"
)
_WORDS = _VOCABULARY.split()
_OPENERS = (
    "Thanks so much for taking the time.",
    "I hope you are well.",
    "Quick question, if you have a minute.",
    "Following up on our chat last week.",
    "It was great to meet you at the conference.",
    "I would really value your view on this.",
    "Sorry for the long mail.",
)
_CLOSERS = ("Best,", "Thanks,", "Cheers,", "Many thanks,", "Kind regards,", "All the best,")
_TOPICS = (
    "our pricing page",
    "the seed round",
    "hiring a first engineer",
    "the onboarding flow",
    "moving upmarket",
    "the board deck",
    "a career change",
    "the conference talk",
    "our churn numbers",
    "the enterprise contract",
    "a co-founder split",
    "remote hiring",
    "the launch plan",
    "the book proposal",
    "negotiating equity",
    "the product roadmap",
    "a partner channel",
    "the research paper",
    "my promotion case",
    "the newsletter",
)
_ASKS = (
    "Advice on {}?",
    "Question about {}",
    "Could I ask you about {}?",
    "{}: what would you do?",
    "Your view on {}",
    "Help with {}",
)
_FIRST_NAMES = (
    "Alan Anna Grace Linus Margaret Donald Barbara Ken Frances Dennis Radia Edsger Tim Shafi "
    "Leslie Niklaus John Sophie Marta Ravi Priya Wei Yuki Omar Fatima Lars Ingrid Pierre Elena "
    "Kofi Amara Diego Lucia Hannah Tomás"
)
_FIRST = _FIRST_NAMES.split()
_LAST_NAMES = (
    "Kay Hopper Torvalds Hamilton Knuth Liskov Thompson Allen Ritchie Perlman Dijkstra Lee "
    "Goldwasser Lamport Wirth McCarthy Wilson Novak Shah Patel Chen Tanaka Haddad Berg Dubois "
    "Rossi Mensah Okafor Garcia Fernandez Schmidt Nowak"
)
_LAST = _LAST_NAMES.split()
_NON_ASCII = (
    "Jürgen Müller",
    "Zoë Brontë",
    "José Núñez",
    "Søren Kierkegård",
    "Chloé Lefèvre",
    "Łukasz Wróbel",
    "Ærin Østergård",
    "Çağla Yılmaz",
)
_DOMAINS = (
    "example.org",
    "example.net",
    "firm.example",
    "university.example",
    "studio.example",
    "ventures.example",
    "labs.example",
    "consulting.example",
)


@dataclass(frozen=True)
class Mentor:
    name: str
    address: str

    @property
    def header(self) -> str:
        return _addr(self.name, self.address)


@dataclass
class Thread:
    """One advice exchange: the ask, and what came of it."""

    number: int
    subject: str
    mentors: list[Mentor]
    client: str  # the user's mail client: gmail, outlook or apple
    ask_id: str
    answer_id: str
    ask_text: list[str]
    answer_text: list[str]
    forward_style: str
    asked: bool = True
    advised: bool = False
    replies: int = 0


@dataclass(frozen=True)
class Corpus:
    """The messages in mailbox (UID) order, what each is, and the loops they must leave."""

    messages: list[bytes]
    kinds: list[str]
    #: loop id → the stage it must be at after all the messages ("asked" or "advised")
    loops: dict[str, str]

    def sizes(self) -> list[int]:
        return [len(m) for m in self.messages]


@dataclass
class _Planned:
    position: float
    order: int
    kind: str
    thread: Thread | None
    build: Callable[[random.Random, str, bytes], bytes] = field(repr=False)


# --- text ---------------------------------------------------------------------------------------


class Prose:
    """English-like sentences from a fixed vocabulary (a pool, so generating stays cheap)."""

    def __init__(self, rng: random.Random, pool: int = 3000) -> None:
        self.rng = rng
        weights = [1 / (rank + 1) ** 0.9 for rank in range(len(_WORDS))]
        self.sentences = [self._sentence(weights) for _ in range(pool)]

    def _sentence(self, weights: list[float]) -> str:
        words = self.rng.choices(_WORDS, weights, k=self.rng.randint(7, 22))
        if len(words) > 10 and self.rng.random() < 0.4:
            words[self.rng.randint(4, len(words) - 4)] += ","
        end = self.rng.choices(".?!", (20, 3, 1))[0]
        text = " ".join(words)
        return text[0].upper() + text[1:] + end

    def paragraph(self, low: int = 2, high: int = 6) -> str:
        return " ".join(self.rng.choices(self.sentences, k=self.rng.randint(low, high)))

    def paragraphs(self, low: int, high: int) -> list[str]:
        return [self.paragraph() for _ in range(self.rng.randint(low, high))]

    def filler(self, chars: int, seed: int) -> list[str]:
        """About ``chars`` characters of paragraphs, the same for the same seed."""
        rng = random.Random(seed)
        out: list[str] = []
        size = 0
        while size < chars:
            text = " ".join(rng.choices(self.sentences, k=rng.randint(3, 7)))
            out.append(text)
            size += len(text) + 2
        return out


# --- MIME building ------------------------------------------------------------------------------


def _addr(name: str, address: str) -> str:
    if name.isascii():
        return formataddr((name, address))
    return formataddr((name, address), charset="utf-8")


def _b64(rng: random.Random, nbytes: int) -> str:
    return base64.b64encode(rng.randbytes(nbytes)).decode()


def _folded(name: str, value: str, width: int = 76) -> str:
    """A long header value folded at spaces (or hard, for base64 runs), as signers write them."""
    lines: list[str] = []
    line = f"{name}: "
    for word in value.split(" "):
        while len(word) > width:
            room = max(10, width - len(line))
            line += word[:room]
            lines.append(line)
            line, word = "\t", word[room:]
        if len(line) + len(word) + 1 > width and line.strip():
            lines.append(line.rstrip())
            line = "\t"
        line += word + " "
    lines.append(line.rstrip())
    return "\n".join(lines)


def _qp(text: str) -> str:
    return binascii.b2a_qp(text.encode("utf-8")).decode("ascii")


def text_part(text: str, subtype: str = "plain", flowed: bool = False) -> str:
    extra = "; format=flowed; delsp=yes" if flowed else ""
    return (
        f'Content-Type: text/{subtype}; charset="UTF-8"{extra}\n'
        "Content-Transfer-Encoding: quoted-printable\n\n" + _qp(text) + "\n"
    )


def multipart(subtype: str, parts: list[str], rng: random.Random) -> str:
    boundary = f"000000000000{rng.getrandbits(64):016x}"[-28:]
    body = "".join(f"--{boundary}\n{part}\n" for part in parts)
    return f'Content-Type: multipart/{subtype}; boundary="{boundary}"\n\n{body}--{boundary}--\n'


def attachment(rng: random.Random, nbytes: int, inline_image: bool = False) -> str:
    data = base64.encodebytes(rng.randbytes(max(200, nbytes))).decode()
    if inline_image:
        return (
            'Content-Type: image/png; name="image001.png"\n'
            "Content-Description: image001.png\n"
            'Content-Disposition: inline; filename="image001.png"; size=4211\n'
            f"Content-ID: <image001.png@01DC{rng.getrandbits(32):08X}.{rng.getrandbits(32):08X}>\n"
            f"Content-Transfer-Encoding: base64\n\n{data}"
        )
    name, ctype = rng.choice(
        (
            ("notes.pdf", "application/pdf"),
            ("pricing-draft.pdf", "application/pdf"),
            ("deck-v3.pdf", "application/pdf"),
            ("screenshot.png", "image/png"),
            (
                "plan.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            ),
        )
    )
    return (
        f'Content-Type: {ctype}; name="{name}"\n'
        f'Content-Disposition: attachment; filename="{name}"\n'
        f"Content-Transfer-Encoding: base64\n"
        f"X-Attachment-Id: f_{rng.getrandbits(40):x}\n\n{data}"
    )


# --- bodies: plain text and HTML of the same blocks ------------------------------------------

Block = tuple[str, object]  # ("p", text) | ("lines", [str]) | ("quote", [Block])


def plain(blocks: list[Block], depth: int = 0) -> str:
    prefix = "> " * depth
    out: list[str] = []
    for kind, value in blocks:
        if kind == "quote":
            assert isinstance(value, list)
            out.append(plain(value, depth + 1))
        elif kind == "lines":
            assert isinstance(value, list)
            out.append("\n".join((prefix + line).rstrip() for line in value))
        else:
            out.append(prefix + str(value))
    joiner = "\n" + prefix.rstrip() + "\n"
    return joiner.join(out)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def html(blocks: list[Block], client: str) -> str:
    inner = _html_blocks(blocks, client)
    if client == "outlook":
        return (
            '<html xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:'
            'office:office" xmlns:w="urn:schemas-microsoft-com:office:word" xmlns:m="http://'
            'schemas.microsoft.com/office/2004/12/omml" xmlns="http://www.w3.org/TR/REC-html40">'
            '<head><meta http-equiv="Content-Type" content="text/html; charset=utf-8">'
            '<meta name="Generator" content="Microsoft Word 15 (filtered medium)"><style><!--'
            + _OUTLOOK_STYLE
            + '--></style></head><body lang="EN-US" link="#0563C1" vlink="#954F72" '
            'style="word-wrap:break-word"><div class="WordSection1">' + inner + "</div></body>"
            "</html>"
        )
    if client == "apple":
        return (
            '<html><head><meta http-equiv="content-type" content="text/html; charset=utf-8">'
            '</head><body style="overflow-wrap: break-word; -webkit-nbsp-mode: space; '
            'line-break: after-white-space;">' + inner + "</body></html>"
        )
    return '<div dir="ltr">' + inner + "</div>"


_OUTLOOK_STYLE = (
    '@font-face {font-family:"Cambria Math"; panose-1:2 4 5 3 5 4 6 3 2 4;} @font-face '
    "{font-family:Calibri; panose-1:2 15 5 2 2 2 4 3 2 4;} @font-face {font-family:Aptos;} "
    "p.MsoNormal, li.MsoNormal, div.MsoNormal {margin:0cm; font-size:11.0pt; font-family:"
    '"Aptos",sans-serif; mso-ligatures:standardcontextual; mso-fareast-language:EN-US;} '
    "a:link, span.MsoHyperlink {mso-style-priority:99; color:#467886; text-decoration:underline;} "
    'span.EmailStyle17 {mso-style-type:personal-compose; font-family:"Aptos",sans-serif; '
    "color:windowtext;} .MsoChpDefault {mso-style-type:export-only; font-size:11.0pt; "
    "mso-fareast-language:EN-US;} @page WordSection1 {size:612.0pt 792.0pt; margin:72.0pt "
    "72.0pt 72.0pt 72.0pt;} div.WordSection1 {page:WordSection1;} "
)


def _html_blocks(blocks: list[Block], client: str) -> str:
    out: list[str] = []
    for kind, value in blocks:
        if kind == "quote":
            assert isinstance(value, list)
            inner = _html_blocks(value, client)
            if client == "gmail":
                out.append(
                    '<blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;'
                    'border-left:1px solid rgb(204,204,204);padding-left:1ex">'
                    + inner
                    + "</blockquote>"
                )
            elif client == "apple":
                out.append(f'<blockquote type="cite"><div>{inner}</div></blockquote>')
            else:
                out.append(
                    '<div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm '
                    f'0cm 0cm">{inner}</div>'
                )
        elif kind == "lines":
            assert isinstance(value, list)
            out.append("<div>" + "<br>".join(_escape(line) for line in value) + "</div>")
        elif client == "outlook":
            out.append(
                f'<p class="MsoNormal"><span lang="EN-US">{_escape(str(value))}</span>'
                '<o:p></o:p></p><p class="MsoNormal"><o:p>&nbsp;</o:p></p>'
            )
        else:
            out.append(f"<div>{_escape(str(value))}</div><div><br></div>")
    return "".join(out)


# --- headers ------------------------------------------------------------------------------------


def _date(position: float) -> datetime:
    return START + timedelta(minutes=17 * position)


def message_id(rng: random.Random, client: str, domain: str = "example.com") -> str:
    if client == "gmail":
        token = base64.b64encode(rng.randbytes(33), b"+_").decode()
        return f"<CA{token}@mail.gmail.com>"
    if client == "outlook":
        box = f"AM{rng.randint(0, 9)}PR{rng.randint(10, 99)}MB{rng.randint(1000, 9999)}"
        return (
            f"<{box}{rng.getrandbits(96):024X}@{box}.eurprd0{rng.randint(1, 9)}.prod.outlook.com>"
        )
    uuid = "-".join(f"{rng.getrandbits(b * 4):0{b}X}" for b in (8, 4, 4, 4, 12))
    return f"<{uuid}@{domain}>"


def _trace(rng: random.Random, when: datetime, sender: str) -> list[str]:
    """What the service's receiving server adds on top (newest first)."""
    stamp = format_datetime(when + timedelta(seconds=rng.randint(1, 40)))
    ip = f"209.85.{rng.randint(128, 255)}.{rng.randint(1, 254)}"
    domain = sender.rpartition("@")[2]
    return [
        f"Return-Path: <{sender}>",
        f"Delivered-To: {SERVICE}",
        "Received: from mx1.example.com\n\tby imap1.example.com with LMTP\n\t"
        f"id {_b64(rng, 15)}\n\t(envelope-from <{sender}>)\n\tfor <{SERVICE}>; {stamp}",
        f"Received: from relay.{domain} (relay.{domain} [{ip}])\n\t(using TLSv1.3 with cipher "
        "TLS_AES_256_GCM_SHA384 (256/256 bits)\n\t key-exchange X25519 server-signature "
        "RSA-PSS (2048 bits) server-digest SHA256)\n\t(No client certificate requested)\n\t"
        f"by mx1.example.com (Postfix) with ESMTPS id 4{rng.getrandbits(44):011X}\n\t"
        f"for <{SERVICE}>; {stamp}",
        _folded(
            "Authentication-Results",
            f"mx1.example.com; dkim=pass (2048-bit key; unprotected) header.d={domain} "
            f"header.i=@{domain} header.a=rsa-sha256 header.s=sel1 header.b={_b64(rng, 6)}; "
            f"spf=pass (mx1.example.com: domain of {sender} designates {ip} as permitted "
            f"sender) smtp.mailfrom={sender}; dmarc=pass (p=NONE sp=NONE dis=NONE) "
            f"header.from={domain}",
        ),
    ]


def _dkim(rng: random.Random, domain: str, heads: str, name: str = "DKIM-Signature") -> str:
    return _folded(
        name,
        f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=20230601; "
        f"t={rng.randint(1767000000, 1799999999)}; x={rng.randint(1767000000, 1799999999)}; "
        f"darn=example.com; h={heads}; bh={_b64(rng, 32)}; b={_b64(rng, 256)}",
    )


def _client_headers(rng: random.Random, client: str, when: datetime, subject: str) -> list[str]:
    stamp = format_datetime(when)
    heads = "to:subject:message-id:date:from:mime-version:from:to:cc:subject:date:message-id"
    if client == "gmail":
        return [
            _dkim(rng, "example.com", heads),
            f"Received: by mail-wr1-f{rng.randint(10, 99)}.google.com with SMTP id "
            f"{rng.getrandbits(40):x}so{rng.randint(10**6, 10**7)}.1\n\tfor <{SERVICE}>; {stamp}",
            _dkim(rng, "1e100.net", heads, "X-Google-DKIM-Signature"),
            _folded("X-Gm-Message-State", _b64(rng, 120)),
            _folded("X-Google-Smtp-Source", _b64(rng, 60)),
            f"X-Received: by 2002:a05:6000:{rng.getrandbits(16):x} with SMTP id "
            f"{rng.getrandbits(40):x}.{rng.randint(1, 99)}; {stamp}",
            _folded("X-Gm-Gg", _b64(rng, 90)),
            "MIME-Version: 1.0",
        ]
    if client == "outlook":
        return [
            _folded(
                "ARC-Seal",
                f"i=1; a=rsa-sha256; s=arcselector10001; d=microsoft.com; "
                f"cv=none; b={_b64(rng, 256)}",
            ),
            _folded(
                "ARC-Message-Signature",
                f"i=1; a=rsa-sha256; c=relaxed/relaxed; "
                f"d=microsoft.com; s=arcselector10001; h=From:Date:Subject:Message-ID:"
                f"Content-Type:MIME-Version:X-MS-Exchange-AntiSpam-MessageData-ChunkCount; "
                f"bh={_b64(rng, 32)}; b={_b64(rng, 256)}",
            ),
            _folded(
                "ARC-Authentication-Results",
                "i=1; mx.microsoft.com 1; spf=pass "
                "smtp.mailfrom=example.com; dmarc=pass action=none header.from=example.com; "
                "dkim=pass header.d=example.com; arc=none",
            ),
            _dkim(rng, "example.com", heads),
            f"Received: from AM0PR04MB{rng.randint(1000, 9999)}.eurprd04.prod.outlook.com by "
            f"AM0PR04MB{rng.randint(1000, 9999)}.eurprd04.prod.outlook.com with\n\tMicrosoft "
            f"SMTP Server (version=TLS1_2, cipher=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384)\n\t"
            f"id 15.20.{rng.randint(1000, 9999)}.{rng.randint(10, 99)}; {stamp}",
            f"Thread-Topic: {subject}" if subject.isascii() else "Thread-Topic: (see Subject)",
            f"Thread-Index: {_b64(rng, 22)}",
            "Accept-Language: en-GB, en-US",
            "Content-Language: en-GB",
            "X-MS-Has-Attach:",
            "X-MS-TNEF-Correlator:",
            "msip_labels:",
            "x-ms-publictraffictype: Email",
            f"x-ms-traffictypediagnostic: AM0PR04MB{rng.randint(1000, 9999)}:EE_",
            "x-ms-office365-filtering-correlation-id: "
            + "-".join(f"{rng.getrandbits(b * 4):0{b}x}" for b in (8, 4, 4, 4, 12)),
            _folded(
                "x-microsoft-antispam", "BCL:0;ARA:13230040|366016|1800799024|376014|38070700018;"
            ),
            _folded("x-microsoft-antispam-message-info", _b64(rng, 380)),
            _folded(
                "x-forefront-antispam-report",
                "CIP:255.255.255.255;CTRY:;LANG:en;SCL:1;"
                "SRV:;IPV:NLI;SFV:NSPM;H:AM0PR04MB.eurprd04.prod.outlook.com;PTR:;CAT:NONE;"
                "SFS:(13230040)(366016)(1800799024)(376014)(38070700018);DIR:OUT;SFP:1101;",
            ),
            "MIME-Version: 1.0",
            "X-OriginatorOrg: example.com",
        ]
    return [
        _dkim(rng, "example.com", heads),
        "Mime-Version: 1.0 (Mac OS X Mail 16.0 \\(3826.400.131.1.6\\))",
        "X-Mailer: Apple Mail (2.3826.400.131.1.6)",
    ]


def _headers(
    rng: random.Random,
    *,
    client: str,
    sender: str,
    to: list[str],
    cc: list[str],
    subject: str,
    when: datetime,
    mid: str,
    in_reply_to: str = "",
    references: list[str] | None = None,
    trace: bool = True,
) -> str:
    envelope = sender.rpartition("<")[2].rstrip(">") if "<" in sender else sender
    lines = _trace(rng, when, envelope) if trace else []
    lines += _client_headers(rng, client, when, subject)
    lines += [f"From: {sender}", f"Date: {format_datetime(when)}", f"Message-ID: {mid}"]
    if subject.isascii():
        lines.append(f"Subject: {subject}")
    else:
        lines.append("Subject: =?UTF-8?B?" + base64.b64encode(subject.encode()).decode() + "?=")
    lines.append(_folded("To", ", ".join(to)))
    if cc:
        lines.append(_folded("Cc", ", ".join(cc)))
    if in_reply_to:
        lines.append(f"In-Reply-To: {in_reply_to}")
    if references:
        lines.append(_folded("References", " ".join(references)))
    return "\n".join(lines) + "\n"


def _finish(headers: str, body: str) -> bytes:
    return (headers + body).replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def _alternative(rng: random.Random, blocks: list[Block], client: str) -> str:
    text = plain(blocks)
    if client == "apple" and rng.random() < 0.4:
        return text_part(text, flowed=True)  # Apple Mail sends some mail as plain text only
    return multipart("alternative", [text_part(text), text_part(html(blocks, client), "html")], rng)


def _with_files(rng: random.Random, body: str, client: str, attach: int) -> str:
    if attach <= 0:
        return body
    parts = [body]
    if client == "outlook" and attach > 6000:  # the signature logo, then the real file
        parts.append(attachment(rng, 4211 * 3 // 4, inline_image=True))
        attach -= 4211
    parts.append(attachment(rng, attach))
    return multipart("mixed", parts, rng)


# --- the messages of a thread -------------------------------------------------------------------


def _user_header() -> str:
    return _addr(USER_NAME, USER)


def _signature(client: str) -> Block:
    lines = ["--", USER_NAME, "Founder, Analytical Engines Ltd", "+44 20 7946 0000"]
    if client == "outlook":
        lines.append("Get Outlook for iOS")
    return ("lines", lines)


def _attribution(client: str, when: datetime, who: str) -> Block:
    if client == "outlook":
        return ("lines", [])
    stamp = when.strftime("%a, %b %-d, %Y at %-I:%M %p")
    return ("lines", [f"On {stamp} {who} wrote:"])


def _outlook_block(sender: str, when: datetime, to: str, subject: str) -> Block:
    return (
        "lines",
        [
            "________________________________",
            f"From: {sender}",
            f"Sent: {when.strftime('%A, %B %-d, %Y %-I:%M %p')}",
            f"To: {to}",
            f"Subject: {subject}",
        ],
    )


def _history(thread: Thread, at: float, filler: list[str]) -> list[Block]:
    """The mentor's answer quoting the ask (and older history, the filler), as a client quotes."""
    ask: list[Block] = [("p", p) for p in thread.ask_text] + [("p", p) for p in filler]
    mentor = thread.mentors[0]
    answer: list[Block] = [("p", p) for p in thread.answer_text]
    answer.append(("lines", [mentor.name.split()[0]]))
    if thread.client == "outlook":
        answer.append(_outlook_block(_user_header(), _date(at - 2), mentor.header, thread.subject))
        answer.extend(ask)
        return answer
    answer.append(_attribution(thread.client, _date(at - 2), _user_header()))
    answer.append(("quote", ask))
    return answer


def build_ask(thread: Thread, at: float) -> Callable[[random.Random, str, bytes], bytes]:
    def build(rng: random.Random, filler: str, attach: bytes) -> bytes:
        blocks: list[Block] = [("p", f"Hi {thread.mentors[0].name.split()[0]},")]
        blocks += [("p", p) for p in thread.ask_text]
        blocks += [("p", p) for p in filler.split("\n") if p]
        blocks += [("p", rng.choice(_CLOSERS)), _signature(thread.client)]
        body = _with_files(
            rng, _alternative(rng, blocks, thread.client), thread.client, len(attach)
        )
        heads = _headers(
            rng,
            client=thread.client,
            sender=_user_header(),
            to=[thread.mentors[0].header],
            cc=[m.header for m in thread.mentors[1:]],
            subject=thread.subject,
            when=_date(at),
            mid=thread.ask_id,
        )
        return _finish(heads, body)

    return build


def _forward_blocks(thread: Thread, at: float, filler: list[str]) -> list[Block]:
    mentor = thread.mentors[0]
    when = _date(at - 1)
    note: list[Block] = [
        (
            "p",
            random.Random(at).choice(
                ("FYI, his answer.", "See below.", "Forwarding the answer I got.", "Worth keeping.")
            ),
        )
    ]
    history = _history(thread, at, filler)
    style = thread.forward_style
    if style == "outlook":
        head = _outlook_block(mentor.header, when, _user_header(), f"RE: {thread.subject}")
        return [*note, _signature("outlook"), head, *history]
    if style == "apple":
        head = (
            "lines",
            [
                "Begin forwarded message:",
                "",
                f"From: {mentor.header}",
                f"Subject: Re: {thread.subject}",
                f"Date: {when.strftime('%-d %B %Y at %H:%M:%S')} GMT",
                f"To: {_user_header()}",
            ],
        )
        return [*note, head, ("quote", history)]
    stamp = when.strftime("%a, %b %-d, %Y at %-I:%M %p")
    head = (
        "lines",
        [
            "---------- Forwarded message ---------",
            f"From: {mentor.header}",
            f"Date: {stamp}",
            f"Subject: Re: {thread.subject}",
            f"To: {_user_header()}",
        ],
    )
    return [*note, head, *history]


def build_forward(thread: Thread, at: float) -> Callable[[random.Random, str, bytes], bytes]:
    """The user forwards the mentor's answer to the service (inline or attached)."""

    def build(rng: random.Random, filler: str, attach: bytes) -> bytes:
        extra = [p for p in filler.split("\n") if p]
        prefix = "FW" if thread.client == "outlook" else "Fwd"
        refs: list[str] = []
        if thread.forward_style == "attached":
            body = _attached_forward(rng, thread, at, extra)
        else:
            blocks = _forward_blocks(thread, at, extra)
            body = _with_files(
                rng, _alternative(rng, blocks, thread.client), thread.client, len(attach)
            )
            if thread.forward_style == "gmail" and thread.asked and rng.random() < 0.5:
                refs = [thread.ask_id, thread.answer_id]  # Gmail keeps the thread's ids
        heads = _headers(
            rng,
            client=thread.client,
            sender=_user_header(),
            to=[SERVICE],
            cc=[],
            subject=f"{prefix}: Re: {thread.subject}",
            when=_date(at),
            mid=message_id(rng, thread.client),
            in_reply_to=refs[-1] if refs else "",
            references=refs,
        )
        return _finish(heads, body)

    return build


def _attached_forward(rng: random.Random, thread: Thread, at: float, extra: list[str]) -> str:
    mentor = thread.mentors[0]
    client = rng.choice(("gmail", "outlook", "apple"))
    inner_thread = Thread(**{**thread.__dict__, "client": client})
    blocks = _history(inner_thread, at, extra)
    inner_heads = _headers(
        rng,
        client=client,
        sender=mentor.header,
        to=[_user_header()],
        cc=[],
        subject=f"Re: {thread.subject}",
        when=_date(at - 1),
        mid=thread.answer_id,
        in_reply_to=thread.ask_id,
        references=[thread.ask_id],
        trace=False,
    )
    inner = inner_heads + _alternative(rng, blocks, client)
    note = _alternative(
        rng, [("p", "His answer, attached."), _signature(thread.client)], thread.client
    )
    attached = (
        "Content-Type: message/rfc822\n"
        'Content-Disposition: attachment; filename="Re_ advice.eml"\n\n' + inner
    )
    return multipart("mixed", [note, attached], rng)


def build_reply(thread: Thread, at: float) -> Callable[[random.Random, str, bytes], bytes]:
    """The user writes to the mentor again in the thread (BCC'ing the service)."""
    number = thread.replies

    def build(rng: random.Random, filler: str, attach: bytes) -> bytes:
        mentor = thread.mentors[0]
        extra = [p for p in filler.split("\n") if p]
        prose = Prose(random.Random(int(at * 1000)), pool=40)
        own: list[Block] = [("p", f"Hi {mentor.name.split()[0]},")]
        own += [("p", p) for p in prose.paragraphs(1, 3)]
        own += [("p", rng.choice(_CLOSERS)), ("lines", [USER_NAME.split()[0]])]
        history = _history(thread, at, extra)
        if thread.client == "outlook":
            head = _outlook_block(
                mentor.header, _date(at - 1), _user_header(), f"RE: {thread.subject}"
            )
            blocks = [*own, head, *history]
        else:
            blocks = [
                *own,
                _attribution(thread.client, _date(at - 1), mentor.header),
                ("quote", history),
            ]
        body = _with_files(
            rng, _alternative(rng, blocks, thread.client), thread.client, len(attach)
        )
        refs = [thread.ask_id, thread.answer_id]
        heads = _headers(
            rng,
            client=thread.client,
            sender=_user_header(),
            to=[mentor.header],
            cc=[m.header for m in thread.mentors[1:]] if number == 0 else [],
            subject=("RE: " if thread.client == "outlook" else "Re: ") + thread.subject,
            when=_date(at),
            mid=message_id(rng, thread.client),
            in_reply_to=thread.answer_id,
            references=refs,
        )
        return _finish(heads, body)

    return build


def build_noise(kind: str, at: float) -> Callable[[random.Random, str, bytes], bytes]:
    """Mail that must change nothing: a stranger's newsletter, or the user's auto-reply."""

    def build(rng: random.Random, filler: str, attach: bytes) -> bytes:
        paragraphs: list[Block] = [("p", p) for p in filler.split("\n") if p]
        if kind == "newsletter":
            sender = formataddr(("Growth Weekly", "news@updates.example.net"))
            subject = f"Growth Weekly #{int(at) % 300}: pricing experiments that worked"
            extra = [
                "List-Id: Growth Weekly <weekly.updates.example.net>",
                "List-Unsubscribe: <https://updates.example.net/u/123>",
                "Precedence: bulk",
            ]
        else:
            sender = _user_header()
            subject = "Automatic reply: Your message"
            extra = ["Auto-Submitted: auto-replied", "X-Autoreply: yes"]
        blocks: list[Block] = [("p", "I am out of the office until Monday."), *paragraphs]
        heads = _headers(
            rng,
            client="gmail",
            sender=sender,
            to=[SERVICE],
            cc=[],
            subject=subject,
            when=_date(at),
            mid=message_id(rng, "apple", "updates.example.net"),
        )
        return _finish(heads + "\n".join(extra) + "\n", _alternative(rng, blocks, "gmail"))

    return build


# --- the corpus ---------------------------------------------------------------------------------


class _Maker:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.prose = Prose(random.Random(seed + 1))
        self.subjects: set[str] = set()
        count = 600
        self.mentors = [self._mentor(n) for n in range(count)]
        # People ask the same mentors again and again (Zipf-like).
        self.weights = [1 / (rank + 1) ** 0.8 for rank in range(count)]

    def _mentor(self, n: int) -> Mentor:
        rng = self.rng
        if rng.random() < 0.12:
            name = rng.choice(_NON_ASCII)
        else:
            name = f"{rng.choice(_FIRST)} {rng.choice(_LAST)}"
        local = name.split()[0].lower().encode("ascii", "ignore").decode() or "mentor"
        return Mentor(name, f"{local}.{n}@{rng.choice(_DOMAINS)}")

    def subject(self) -> str:
        while True:
            topic = self.rng.choice(_TOPICS)
            text = self.rng.choice(_ASKS).format(topic)
            text = text[0].upper() + text[1:]
            if text in self.subjects:
                text = f"{text} ({self.rng.randint(2, 9999)})"
            if text not in self.subjects:
                self.subjects.add(text)
                return text

    def thread(self, number: int) -> Thread:
        rng = self.rng
        client = rng.choices(("gmail", "outlook", "apple"), (55, 30, 15))[0]
        mentors = [self.mentors[i] for i in self._mentor_picks()]
        style = rng.choices(("native", "attached"), (70, 30))[0]
        return Thread(
            number=number,
            subject=self.subject(),
            mentors=mentors,
            client=client,
            ask_id=message_id(rng, client),
            answer_id=message_id(rng, "gmail" if rng.random() < 0.5 else "apple", "example.org"),
            ask_text=[rng.choice(_OPENERS), *self.prose.paragraphs(1, 4)],
            answer_text=self.prose.paragraphs(1, 5),
            forward_style=client if style == "native" else "attached",
        )

    def _mentor_picks(self) -> list[int]:
        first = self.rng.choices(range(len(self.mentors)), self.weights)[0]
        if self.rng.random() < 0.12:
            second = self.rng.choices(range(len(self.mentors)), self.weights)[0]
            if second != first:
                return [first, second]
        return [first]


def _plan(count: int, maker: _Maker) -> list[_Planned]:
    rng = maker.rng
    planned: list[_Planned] = []
    number = 0
    position = 0.0
    while position < count * 1.1:
        position += 2.0  # a thread every two messages on average keeps ~1 message per position
        roll = rng.random()
        if roll < 0.02:
            kind = rng.choice(("newsletter", "autoreply"))
            planned.append(
                _Planned(position, len(planned), kind, None, build_noise(kind, position))
            )
            continue
        thread = maker.thread(number)
        number += 1
        at = position
        if roll < 0.05:  # a forward with no loop behind it: it starts one at advised
            thread.asked = False
            thread.forward_style = rng.choice(("gmail", "attached"))
        else:
            planned.append(_Planned(at, len(planned), "ask", thread, build_ask(thread, at)))
        if not thread.asked or rng.random() < 0.65:
            at += rng.expovariate(1 / GAP)
            planned.append(
                _Planned(
                    at,
                    len(planned),
                    "forward-" + thread.forward_style,
                    thread,
                    build_forward(thread, at),
                )
            )
        for chance in (0.45, 0.3):
            if thread.asked and rng.random() < chance:
                at += rng.expovariate(1 / GAP)
                planned.append(_Planned(at, len(planned), "reply", thread, build_reply(thread, at)))
                thread.replies += 1
    planned.sort(key=lambda p: (p.position, p.order))
    return planned[:count]


def _bare(mid: str) -> str:
    return mid.strip().strip("<>")


def _expected(planned: list[_Planned]) -> dict[str, str]:
    """The loops the messages must leave, and their stages, from what each thread holds."""
    loops: dict[str, str] = {}
    for item in planned:
        thread = item.thread
        if thread is None:
            continue
        if item.kind == "ask":
            for mentor in thread.mentors:
                loops[loop_id_for(_bare(thread.ask_id), mentor.address)] = "asked"
        elif item.kind.startswith("forward"):
            thread.advised = True
    for item in planned:
        thread = item.thread
        if thread is None or not item.kind.startswith("forward"):
            continue
        mentor = thread.mentors[0].address
        if thread.asked or thread.forward_style == "attached":  # the answer names the ask
            loops[loop_id_for(_bare(thread.ask_id), mentor)] = "advised"
        else:  # an inline forward carries no ids: the forward's own Message-ID is the root
            loops[f"@{item.order}"] = "advised"
    return loops


def _sized(item: _Planned, index: int, target: int, prose: Prose, seed: int) -> bytes:
    """Build ``item`` at about ``target`` bytes: more text (history), or an attachment."""

    def make(filler_chars: int, attach_bytes: int) -> bytes:
        rng = random.Random(seed * 1_000_003 + index)
        filler = "\n".join(prose.filler(filler_chars, seed + index)) if filler_chars else ""
        return item.build(rng, filler, b"\0" * attach_bytes)

    base = make(0, 0)
    deficit = target - len(base)
    if deficit <= 0:
        return base
    rng = random.Random(seed + index * 7)
    if item.kind in ("ask", "reply", "forward-gmail") and deficit > 5000 and rng.random() < 0.35:
        return make(0, int(deficit / 1.37))
    probe = make(2000, 0)
    per_char = max(0.5, (len(probe) - len(base)) / 2000)
    return make(int(deficit / per_char), 0)


def corpus(count: int, seed: int = 1) -> Corpus:
    """``count`` messages in the order they reach the mailbox, with the loops they must leave."""
    maker = _Maker(seed)
    planned = _plan(count, maker)
    sizes = random.Random(seed + 2)
    messages: list[bytes] = []
    for index, item in enumerate(planned):
        target = int(math.exp(sizes.uniform(math.log(MIN_SIZE), math.log(MAX_SIZE))))
        messages.append(_sized(item, index, target, maker.prose, seed))
    loops = _expected(planned)
    # Inline forwards with no loop behind them: the loop's root is the forward's own Message-ID.
    for key in [k for k in loops if k.startswith("@")]:
        stage = loops.pop(key)
        order = int(key[1:])
        index = next(i for i, p in enumerate(planned) if p.order == order)
        item = planned[index]
        assert item.thread is not None
        mid = _header_value(messages[index], "Message-ID")
        loops[loop_id_for(_bare(mid), item.thread.mentors[0].address)] = stage
    return Corpus(messages, [p.kind for p in planned], loops)


def _header_value(raw: bytes, name: str) -> str:
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    for line in head.split("\r\n"):
        if line.lower().startswith(name.lower() + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def fresh_ask(n: int, seed: int = 99) -> tuple[bytes, str]:
    """One new BCC'd ask (a loop of its own), about 15 KB, and the id of the loop it starts."""
    maker = _Maker(seed + n)
    thread = maker.thread(n)
    thread.subject = f"{thread.subject} [{n}]"
    thread.mentors = thread.mentors[:1]
    item = _Planned(0.0, 0, "ask", thread, build_ask(thread, float(n)))
    raw = _sized(item, n, 15_000, maker.prose, seed)
    return raw, loop_id_for(_bare(thread.ask_id), thread.mentors[0].address)
