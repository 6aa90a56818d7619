"""Recognising automatic mail (RFC 3834), so that mailmentor never answers or follows up a robot.

A robot's mail is recognised by what it is, not only by what its headers declare: relays, list
servers and mailbox mode lose or rewrite headers, and Outlook-style servers set none (see
FIELD-NOTES). The rules, cheapest first:

1. headers: Auto-Submitted, Precedence, list headers, X-Autoreply…, and the ones that bounce and
   notification senders add (Exim's X-Failed-Recipients, Exchange's NDR flag, Amazon SNS);
2. subjects that only robots write: delay notices, list-robot notices, feedback-loop complaints;
3. report parts anywhere in the MIME tree (delivery status, feedback/ARF, read receipts);
4. the first few KB of at most a few text parts: Amazon SES notifications, ARF fields, the
   wording of MTAs and list robots, DSN fields;
5. bounce senders (Return-Path, From), then the classic bounce and auto-reply subjects.

People's mail must never be taken for a robot's, and mailmentor users forward and quote robots'
mail too. So the text rules read only the writer's own words (quoted and forwarded history cut
off by quoting.strip_quoted), robot wording counts alone only when the text opens with it, and
DSN fields or robot wording further down need a robot's subject or sender as well. Report parts
below the top level do not count in a forward ("Fwd: …"). Each rule returns a short reason that
ends up in the log.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from email.message import Message
from itertools import islice

from mailmentor.parsing.forwards import subject_kind
from mailmentor.parsing.message import (
    charset_of,
    children,
    clean_text,
    content_type,
    decode_bytes,
    first_header,
    header_text,
    html_to_text,
    is_attachment,
    parse_addresses,
    part_bytes,
    raw_headers,
    single_line,
    walk,
)
from mailmentor.parsing.quoting import quote_depth, strip_quoted

#: Of each text part only this much is read; the check runs on every incoming message.
SCAN_BYTES = 8192
#: At most this many text parts are read, and this many MIME parts walked.
SCAN_TEXT_PARTS = 3
SCAN_WALK_PARTS = 60
#: Robot wording counts alone in this many opening lines, with a robot's subject or sender in
#: this many.
OPENING_LINES = 3
CONTEXT_LINES = 15
#: Robot wording is looked for in the writer's own words among this many first lines of a text.
OPENING_SCAN_LINES = 60

_BULK_PRECEDENCE = frozenset(("bulk", "list", "junk", "auto_reply", "auto-reply"))
_BOUNCE_LOCAL_PARTS = frozenset((
    "mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon", "double-bounce", "post_master",
))  # fmt: skip
_LIST_ROBOT_LOCAL_PARTS = frozenset(("majordomo", "listserv", "sympa", "ezmlm"))
#: Local parts that back up robot wording further down a text (with the two sets above).
_ROBOT_LOCAL_PARTS = _BOUNCE_LOCAL_PARTS | _LIST_ROBOT_LOCAL_PARTS | frozenset((
    "mailman", "noreply", "no-reply", "donotreply", "do-not-reply", "bounce", "bounces",
))  # fmt: skip
#: Senders that only ever send notifications (Amazon SNS, Hotmail and AOL feedback loops).
_NOTIFICATION_SENDERS = frozenset((
    "no-reply@sns.amazonaws.com", "complaints@email-abuse.amazonses.com", "staff@hotmail.com",
    "scomp@aol.net",
))  # fmt: skip

# --- headers ------------------------------------------------------------------------------------

_LIST_HEADERS = (
    ("list-id", "List-Id"),
    ("list-unsubscribe", "List-Unsubscribe"),
    ("mailing-list", "mailing-list"),
)
#: Headers that only bounce, notification and list-robot software adds, and what they mean.
_ROBOT_HEADERS = (
    ("x-failed-recipients", "bounce"),
    ("x-ms-exchange-message-is-ndr", "bounce"),
    ("x-amz-sns-message-id", "Amazon SNS notification"),
    ("x-list-administrivia", "mailing-list robot notice"),
)

# --- subjects -----------------------------------------------------------------------------------

_AUTO_SUBJECT = re.compile(
    r"^\s*(?:automatic reply|auto reply|auto-reply|autoreply|auto response|auto-response"
    r"|automatische antwort|out of (?:the )?office|autosvar|abwesenheitsnotiz"
    r"|réponse automatique|respuesta automática|risposta automatica|automatisch antwoord"
    r"|undeliverable|undelivered mail|delivery status notification|delivery failure"
    r"|permanent delivery failure|mail delivery failed|mail delivery (?:failure|problem|error)"
    r"|mail system error|returned mail|failure notice|failure delivery|mail failed"
    r"|(?:mail|message) (?:could )?not (?:be )?delivered|non-?deliverable|non-delivery"
    r"|delivery notification: delivery has failed|postfix smtp server: errors from"
    r"|(?:\[postmaster\] )?(?:e-?mail|message) delivery (?:has )?fail(?:ed|ure)"
    r"|there was an error sending your mail|(?:e-?mail )?bounce notification"
    r"|aws notification message$"
    r"|your message to \S.{0,120}? (?:could not be|couldn't be|cannot be|was not|wasn't"
    r"|has not been) delivered"
    r"|non remis|unzustellbar|nicht zustellbar|non recapitabile|no se puede entregar"
    r"|onbestelbaar|ваше сообщение не доставлено|メールエラー通知|メッセージを配信できません)\b",
    re.I,
)
#: Subjects of "still being retried" notices (Postfix, Exim, Sendmail, Gmail, Zoho, Outlook…).
_DELAY_SUBJECT = re.compile(
    r"^\s*(?:delayed mail \(still being retried\)|warning: message \S+ delayed"
    r"|warning:?[\s-]*could not send (?:message|mail) for (?:the )?past"
    r"|warning: message has not yet been delivered|mail delivery warning"
    r"|(?:mail )?delivery status notification\s*\((?:[^)]{0,40}\s)?delay"
    r"|delivery status notification:\s*(?:warning|delay)"
    r"|delivery notification: delivery has been delayed)",
    re.I,
)
#: Subjects of list-robot notices (Mailman, Majordomo, LISTSERV, ezmlm, Sympa, fml, mlmmj).
_LIST_SUBJECT = re.compile(
    r"^\s*(?:your message to \S.{0,120}? awaits moderator approval"
    r"|request to mailing list \S.{0,120}? rejected|the results of your email commands?\b"
    r"|auto-response for your message to\b|last autoresponse notification for today"
    r"|you \S+@\S+ are not (?:a )?member\b|you are not (?:a )?member of (?:the|this) \S*\s?list"
    r"|loop alert:|majordomo results\b|ezmlm (?:response|warning)\b"
    r"|confirm (?:subscribe|unsubscribe|post) (?:to|from) \S+@|(?:welcome to|goodbye from"
    r"|probe from|returned post for|warning from) \S+@\S+$"
    r"|message distribution: (?:forwarded|authorization denied|user error|internal server error)"
    r"|results of your commands\b|rejected posting to \S+@|output of your job\b"
    r"|post to \S+@\S+ denied)",
    re.I,
)
#: Feedback-loop complaints that carry no ARF report (Hotmail's JMRP).
_COMPLAINT_SUBJECT = re.compile(r"^\s*complaint about message from \d{1,3}(?:\.\d{1,3}){3}", re.I)
#: Exim's bounce subject, which some hosts prefix with their name.
_EXIM_SUBJECT = re.compile(r"mail delivery failed\s*:\s*returning message to sender", re.I)


# --- MIME parts ---------------------------------------------------------------------------------

_PART_KINDS = {
    "message/delivery-status": "delivery report",
    "message/global-delivery-status": "delivery report",
    "text/rfc822-headers": "delivery report",
    "message/feedback-report": "feedback report",
    "message/disposition-notification": "read receipt",
    "message/global-disposition-notification": "read receipt",
    "multipart/report": "delivery or read report",
}
_FEEDBACK_TYPES = frozenset(("message/feedback-report",))
_STATUS_TYPES = frozenset(("message/delivery-status", "message/global-delivery-status"))
_REPORT_TYPE = re.compile(r"report-type\s*=\s*\"?([\w-]+)", re.I)
_REPORT_TYPE_KINDS = {
    "delivery-status": "delivery report",
    "feedback-report": "feedback report",
    "disposition-notification": "read receipt",
}

# --- text ---------------------------------------------------------------------------------------

#: What MTAs write at the top of a bounce (Postfix, Exim, Gmail, qmail, Exchange, Yahoo, OpenSMTPD,
#: Sendmail, Oracle, InterScan, Verizon…), matched on the text's lines joined by single spaces.
_BOUNCE_WORDING = (
    r"this is the mail system at host\b",
    r"this message was created automatically by mail delivery (?:software|system)",
    r"this is an automatically generated delivery status notification",
    r"this is an automated message created by mail delivery software",
    r"hi\. this is the qmail-send program",
    r"(?:hi! )?this is the mailer-daemon, please do not reply",
    r"i'm sorry to have to inform you that your message could not be delivered",
    r"i'm afraid i wasn't able to deliver your message",
    r"delivery has failed to these recipients or groups",
    r"delivery to the following recipients? failed permanently",
    r"your message did not reach some or all of the intended recipients",
    r"\*\* ?(?:address not found|message not delivered|message blocked|delivery incomplete) ?\*\*",
    r"(?:message from \S+ )?unable to deliver (?:your )?message to the following address",
    r"sorry, we were unable to deliver your message to the following address",
    r"unfortunately, your mail was not delivered to the following address",
    r"[-\s]*the following addresses had (?:permanent fatal errors|fatal errors|delivery "
    r"(?:problems|errors|notifications))",
    r"this report relates to a message you sent with the following header fields",
    r"\**\s*message from interscan messaging security suite",
    r"each of the following recipients was rejected by a remote mail server",
    r"error: invalid user address error message below",
    r"\|?-{5,} ?message log follows",
    r"your mail sent on: .{0,60}? could not be delivered to",
    r"a message that you sent (?:could not be delivered|contained one or more recipient "
    r"addresses that were incorrectly constructed)",
    r"your mail cannot be delivered to the following address",
    r"the following mail has been returned because it encountered an error",
    r"this message is to inform you that an email you sent was rejected",
    r"automatic bounce notification",
    r"we had trouble delivering your message",
    r"это письмо создано автоматически",
    r"votre message n'a pas pu (?:être|etre) (?:délivré|delivre|remis|distribué)",
)
#: Bounce wording that people might also write, so it needs a robot's subject or sender.
_BOUNCE_WORDING_WEAK = (
    r"the original message was received at\b",
    r"your message could not be delivered to\b",
    r"your mail to the following recipients could not be delivered",
    r"this is an advisory-only email",
    r"transcript of session follows",
    r"this is an automated alert notification",
)
#: Delay ("still being retried") wording; it also names the kind of a bounce-like text.
_DELAY_WORDING = (
    r"[#*\s]*this is a warning (?:message )?only",
    r"you do not need to resend your message",
    r"delivery to the following recipients? (?:has|have) been delayed",
    r"delivery is delayed to these recipients or groups",
    r"your message could not be delivered for more than",
    r"there was a temporary problem delivering your message",
    r"a message is delayed for more than",
    r"this is only a notification about a delay",
    r"has not yet been delivered to one or more of its recipients",
    r"this is just a warning, you do not need to take any action",
)
_DELAY_WORDING_WEAK = (
    r"message will be retried for",
    r"it will be retried until it is",
    r"we will continue to (?:try|attempt) to deliver",
)
#: What list robots write (Mailman, ezmlm, Sympa, fml, Google Groups, LISTSERV, Majordomo).
_LIST_WORDING = (
    r"your mail to '[^']{1,100}' with the subject",
    r"is being held until the list moderator can review it",
    r"your message has been rejected, probably because you are not subscribed",
    r"you are not allowed to post to this mailing list",
    r"your request to the \S+ mailing list .{0,200}?has been rejected by the list moderator",
    r"the results of your email commands? (?:are|is) provided below",
    r"hi! this is the ezmlm program",
    r"this is an automatic response sent by sympa",
    r"you are not a member of this mailing list",
    r"we're writing to let you know that the group you tried to contact",
    r"you are not authorized to send mail to the \S+ list from your",
    r"\*{4} help for majordomo@",
    r"\*{4} command '.{0,80}' not recognized",
)
_LIST_WORDING_WEAK = (r"your message .{0,120}? has been (?:held|forwarded to the moderator)",)


#: What feedback-loop reports open with (RFC 5965's example, Yahoo, AOL, SES).
_FEEDBACK_WORDING = (
    r"this is an? (?:e-?mail )?abuse report for an? (?:e-?mail )?message",
    r"this is an? (?:authentication failure|dmarc failure|spam|abuse) report",
)


def _alternatives(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("(?:" + "|".join(patterns) + ")", re.I)


#: (kind, wording a robot's text opens with, wording that needs a robot's subject or sender).
_Family = tuple[str, re.Pattern[str], re.Pattern[str]]
_WORDING: tuple[_Family, ...] = (
    ("feedback report", _alternatives(_FEEDBACK_WORDING), _alternatives(_FEEDBACK_WORDING)),
    ("mailing-list robot notice", _alternatives(_LIST_WORDING), _alternatives(_LIST_WORDING_WEAK)),
    ("delivery delay notice", _alternatives(_DELAY_WORDING), _alternatives(_DELAY_WORDING_WEAK)),
    ("bounce", _alternatives(_BOUNCE_WORDING), _alternatives(_BOUNCE_WORDING_WEAK)),
)
_DELAY_ANYWHERE = _alternatives(_DELAY_WORDING + _DELAY_WORDING_WEAK)

#: Lines a robot's text may start with that say nothing: MIME preambles and scaffolding (when a
#: boundary was lost), a bare "Hi!", a greeting by address ("Hello a@b.c,"), rules drawn with
#: # * = - _.
_FILLER_LINE = re.compile(
    r"^(?:[\W_]*|this is a (?:multi-part )?(?:message in mime format|mime-encapsulated message"
    r"|mime-formatted message)\.?|portions of this message may be unreadable without a "
    r"mime-capable mail program\.?|boundary=\S+|--[\w.=/+-]{8,}|content-(?:type|disposition"
    r"|transfer-encoding|description)\s*:.*|hi[!.]?|hello[!.]?|(?:hi|hello|dear) \S+@\S+)$",
    re.I,
)
#: An Amazon SES notification, bare or wrapped (escaped) in an SNS envelope.
_SES_JSON = re.compile(
    r'\\?"(?:notificationType|eventType)\\?"\s*:\s*\\?"(Bounce|Complaint|Delivery|DeliveryDelay'
    r'|Reject|Send|Open|Click|Rendering Failure|Subscription)\\?"'
)
#: RFC 5965 fields (all three must be there) and RFC 3464 fields, at the start of a line.
_ARF_FIELDS = {
    "feedback-type": re.compile(r"[a-z][\w-]*$", re.I),
    "user-agent": re.compile(r"\S"),
    "version": re.compile(r"\d"),
}
_DSN_FIELDS = {
    "final-recipient": re.compile(r"[\w.-]+\s*;\s*\S|\S+@\S+"),
    "original-recipient": re.compile(r"[\w.-]+\s*;\s*\S|\S+@\S+"),
    "action": re.compile(r"(?:failed|delayed|delivered|relayed|expanded)\b", re.I),
    "status": re.compile(r"[245]\.\d{1,3}\.\d{1,3}\b"),
}
_LOCAL_PART = re.compile(r"([^\s<>()\[\]@\"',;:]+)@")
_FIELD_LINE = re.compile(r"^([A-Za-z][\w-]{1,30})[ \t]*:[ \t]*(.*)$")


def _token(value: str) -> str:
    """The first word of a structured header value, lower-case ("auto-replied; x=y" → …)."""
    without_comments = re.sub(r"\([^()]*\)", " ", single_line(value))
    return without_comments.split(";")[0].strip().lower()


def _header_names(msg: Message) -> frozenset[str]:
    """The lower-case names of the headers a message has, read once."""
    try:
        return frozenset(str(key).strip().lower() for key, _value in msg.raw_items())
    except Exception:  # a header we cannot read is a header we do not have
        return frozenset()


def _header_reason(msg: Message) -> str | None:
    """What the headers declare: RFC 3834, list headers, and robots' own headers."""
    names = _header_names(msg)
    auto_submitted = _token(first_header(msg, "auto-submitted"))
    if auto_submitted and auto_submitted != "no":
        return f"Auto-Submitted: {auto_submitted}"
    precedence = _token(first_header(msg, "precedence"))
    if precedence in _BULK_PRECEDENCE:
        return f"Precedence: {precedence}"
    for name, label in _LIST_HEADERS:
        if name in names:
            return f"mailing list ({label})"
    for name in ("x-autoreply", "x-autorespond", "x-autoresponse"):
        if name in names:
            return f"{name} header"
    if "x-auto-response-suppress" in names:
        suppress = {
            part.strip().lower()
            for part in first_header(msg, "x-auto-response-suppress").split(",")
        }
        if suppress & {"all", "oof"}:
            return "X-Auto-Response-Suppress: " + ", ".join(sorted(suppress & {"all", "oof"}))
    for name, kind in _ROBOT_HEADERS:
        if name in names:
            return f"{kind} ({name} header)"
    return None


def _subject_reason(subject: str) -> str | None:
    """Subjects that only delay notices, list robots and feedback loops write."""
    for kind, pattern in (
        ("delivery delay notice", _DELAY_SUBJECT),
        ("mailing-list robot notice", _LIST_SUBJECT),
        ("feedback-loop complaint", _COMPLAINT_SUBJECT),
    ):
        match = pattern.match(subject)
        if match:
            return f"{kind} (subject starts with {match.group(0).strip()!r})"
    return None


def _delayed(report: Message) -> bool:
    """Whether a delivery-status part says "Action: delayed" for every recipient."""
    actions = [_token(first_header(block, "action")) for block in children(report)[:50]]
    actions = [action for action in actions if action]
    return bool(actions) and all(action == "delayed" for action in actions)


def _report_kind(part: Message, ctype: str) -> str:
    """Which report a part is: multipart/report names it, a delivery status may say "delayed"."""
    if ctype == "multipart/report":
        found = _REPORT_TYPE.search(first_header(part, "content-type"))
        report_type = found.group(1).lower() if found else ""
        kind = _REPORT_TYPE_KINDS.get(report_type, _PART_KINDS[ctype])
        statuses = [child for child in children(part) if content_type(child) in _STATUS_TYPES]
        return "delivery delay notice" if statuses and _delayed(statuses[0]) else kind
    if ctype in _STATUS_TYPES and _delayed(part):
        return "delivery delay notice"
    return _PART_KINDS[ctype]


def _report_reason(msg: Message, subject: str) -> str | None:
    """A delivery-status, feedback or disposition report, at the top or anywhere below it.

    Attached messages (message/rfc822) are not entered: a report inside one was forwarded. Below
    the top level, a forward's subject means a person forwarded the report inline, except for
    feedback reports, whose senders (Yahoo, AOL) write "Fw:" subjects themselves.
    """
    ctype = content_type(msg)
    if ctype in _PART_KINDS and ctype != "text/rfc822-headers":
        return f"{_report_kind(msg, ctype)} ({ctype})"
    forwarded = subject_kind(subject) == "forward"
    for part, level in islice(walk(msg), SCAN_WALK_PARTS):
        ctype = content_type(part)
        if level and ctype in _PART_KINDS and not (forwarded and ctype not in _FEEDBACK_TYPES):
            return f"{_report_kind(part, ctype)} ({ctype} part)"
    return None


# --- text ---------------------------------------------------------------------------------------


def _text_parts(msg: Message) -> list[Message]:
    """The first few inline text/plain parts (else one text/html part), outside attached mail."""
    plain: list[Message] = []
    html: list[Message] = []
    for part, _level in islice(walk(msg), SCAN_WALK_PARTS):
        ctype = content_type(part)
        if ctype.startswith("multipart/") and not children(part):
            ctype = "text/plain"  # its boundary is lost: mail clients show it as text
        if ctype not in ("text/plain", "text/html") or children(part) or is_attachment(part):
            continue
        (plain if ctype == "text/plain" else html).append(part)
        if len(plain) >= SCAN_TEXT_PARTS:
            break
    return plain or html[:1]


def _head_text(part: Message) -> str:
    """The first SCAN_BYTES of a text part, decoded (HTML as text); nothing more is decoded."""
    text = decode_bytes(part_bytes(part, SCAN_BYTES), charset_of(part))
    if content_type(part) == "text/html":
        text = html_to_text(text)
    return clean_text(text)


def _opening(own_text: str, count: int) -> str:
    """The first ``count`` lines that say something, joined by single spaces."""
    lines: list[str] = []
    for line in own_text.split("\n"):
        stripped = " ".join(line.split())
        if stripped and not _FILLER_LINE.match(stripped):
            lines.append(stripped)
            if len(lines) >= count:
                break
    return " ".join(lines)


def _fields(own_text: str, wanted: dict[str, re.Pattern[str]]) -> set[str]:
    """Which of the wanted ``Name: value`` fields start a line with a plausible value."""
    found: set[str] = set()
    for line in own_text.split("\n"):
        match = _FIELD_LINE.match(line)
        if match:
            name = match.group(1).lower()
            check = wanted.get(name)
            if check is not None and check.match(match.group(2).strip()):
                found.add(name)
    return found


def _wording_reason(
    own_text: str, robot_context: Callable[[], bool], families: tuple[_Family, ...]
) -> str | None:
    """Robot wording: alone when the text opens with it, further down with a robot's context."""
    lead = _opening(own_text, OPENING_LINES)
    opening = _opening(own_text, CONTEXT_LINES)
    for kind, strong, weak in families:
        match = strong.match(lead)
        if match is None and robot_context():
            match = strong.search(opening) or weak.search(opening)
        if match is None:
            continue
        if kind == "bounce" and _DELAY_ANYWHERE.search(opening):
            kind = "delivery delay notice"
        return f"{kind} (text: {' '.join(match.group(0).split())[:60]!r})"
    return None


def _text_reason(text: str, robot_context: Callable[[], bool], forwarded: bool) -> str | None:
    """Provider JSON, robot wording, ARF and DSN fields; in a forward only feedback reports.

    Robot wording counts in the writer's own words at the top (OPENING_SCAN_LINES), fields in
    the whole text; finding the writer's own words is the costly part, so it is done only for
    texts whose unquoted lines already look like a robot's.
    """
    if text.lstrip().startswith("{"):
        found = _SES_JSON.search(text)
        if found:
            return f"Amazon SES {found.group(1).lower()} notification (JSON body)"
    head = text.split("\n", OPENING_SCAN_LINES)[:OPENING_SCAN_LINES]
    families = _WORDING[:1] if forwarded else _WORDING  # feedback loops write "Fw:" subjects
    unquoted = "\n".join(line for line in head if not quote_depth(line))
    if _wording_reason(unquoted, robot_context, families):  # cheap; then the writer's own words
        reason = _wording_reason(strip_quoted("\n".join(head)), robot_context, families)
        if reason:
            return reason
    arf, dsn = _fields(text, _ARF_FIELDS), _fields(text, _DSN_FIELDS)
    arf_found = arf == set(_ARF_FIELDS)
    dsn_found = not forwarded and _dsn_complete(dsn) and robot_context()
    if not (arf_found or dsn_found):
        return None
    own_text = strip_quoted(text)  # fields a person quotes or forwards do not count
    if arf_found and _fields(own_text, _ARF_FIELDS) == set(_ARF_FIELDS):
        return "feedback report (ARF fields in the text)"
    dsn = _fields(own_text, _DSN_FIELDS)
    if dsn_found and _dsn_complete(dsn):
        return "delivery report (DSN fields in the text, " + ", ".join(sorted(dsn)) + ")"
    return None


def _dsn_complete(fields: set[str]) -> bool:
    """A recipient and what happened to it, as a DSN reports them."""
    return bool(
        fields & {"final-recipient", "original-recipient"} and fields & {"action", "status"}
    )


# --- senders ------------------------------------------------------------------------------------


def _return_path_local(msg: Message) -> str | None:
    """The Return-Path's local part, "" for ``<>``; None without a Return-Path."""
    values = raw_headers(msg, "return-path")
    if not values:
        return None
    path = single_line(values[0]).strip().strip("<>").strip()
    return path.rsplit("@", 1)[0].lower() if path else ""


def _sender_locals(msg: Message) -> list[str]:
    """Local parts of From, Sender and Return-Path (robots are named by them), read cheaply."""
    values = raw_headers(msg, "from")[:1] + raw_headers(msg, "sender")[:1]
    found = [local.lower() for value in values for local in _LOCAL_PART.findall(value)[:3]]
    return_path = _return_path_local(msg)
    if return_path:
        found.append(return_path)
    return found


def _is_robot_local(local: str) -> bool:
    """A local part that names a robot: bounce and list software, no-reply senders."""
    base = local.split("+", 1)[0]
    return (
        base in _ROBOT_LOCAL_PARTS
        or base.endswith(("-request", "-owner", "-bounces", "-admin"))
        or base.startswith("owner-")
    )


def is_robot_address(address: str) -> bool:
    """An address robots send from (MAILER-DAEMON@, majordomo@, no-reply@ …): a forwarded
    message from one is a bounce or a notice, never a mentor's advice."""
    local = address.rpartition("@")[0].strip().lower()
    return bool(local) and _is_robot_local(local)


def _robot_context(msg: Message, subject: str) -> bool:
    """A robot's subject or sender: enough to back up robot wording or DSN fields in a text.

    A subject that forwards or replies ("Fwd: Undelivered Mail…") is a person's, whatever it says.
    """
    robot_subjects = (_AUTO_SUBJECT, _DELAY_SUBJECT, _LIST_SUBJECT)
    if not subject_kind(subject) and (
        any(pattern.match(subject) for pattern in robot_subjects) or _EXIM_SUBJECT.search(subject)
    ):
        return True
    return any(_is_robot_local(local) for local in _sender_locals(msg))


def _body_reason(msg: Message, subject: str) -> str | None:
    """Read the start of a few text parts: the writer's own words, not what they quote."""
    forwarded = subject_kind(subject) == "forward"
    known: list[bool] = []

    def robot_context() -> bool:  # looked up once, and only when a rule needs it
        if not known:
            known.append(_robot_context(msg, subject))
        return known[0]

    for part in _text_parts(msg):
        text = _head_text(part)
        if not text.strip():
            continue
        reason = _text_reason(text, robot_context, forwarded)
        if reason:
            return reason
    return None


def _bounce_reason(msg: Message) -> str | None:
    """A bounce's envelope (Return-Path ``<>`` or a daemon's) or a robot's From."""
    return_path = _return_path_local(msg)
    if return_path == "":
        return "empty Return-Path (a bounce)"
    if return_path in _BOUNCE_LOCAL_PARTS:
        return f"Return-Path of {return_path} (a bounce)"
    for sender in parse_addresses(raw_headers(msg, "from"))[:1]:
        local = sender.address.split("@", 1)[0]
        if local in _BOUNCE_LOCAL_PARTS or local in _LIST_ROBOT_LOCAL_PARTS:
            return f"sent by {local}"
        if sender.address in _NOTIFICATION_SENDERS:
            return f"sent by {sender.address} (notifications only)"
    return None


def _classic_subject_reason(subject: str) -> str | None:
    """Last, as it is the weakest sign: auto-reply and bounce subjects."""
    match = _AUTO_SUBJECT.match(subject)
    return f"subject starts with {match.group(0).strip()!r}" if match else None


def automatic_reason(msg: Message) -> str | None:
    """None for mail a person wrote; else a short reason it is automatic. Never raises."""
    try:
        subject = header_text(msg, "subject")
    except Exception:  # an unreadable subject is no subject
        subject = ""
    rules: tuple[Callable[[], str | None], ...] = (
        lambda: _header_reason(msg),
        lambda: _subject_reason(subject),
        lambda: _report_reason(msg, subject),
        lambda: _body_reason(msg, subject),
        lambda: _bounce_reason(msg),
        lambda: _classic_subject_reason(subject),
    )
    for rule in rules:
        try:
            reason = rule()
        except Exception:  # a part we cannot read says nothing either way
            continue
        if reason:
            return reason
    return None
