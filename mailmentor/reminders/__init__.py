"""Render reminder, give-up, "still relevant?" and short reply mails, and the report-back draft.

Data in, EmailMessage out; nothing here sends or reads the clock. One module per concern:

- ``headers``: the mail policy, sanitising of hostile text into headers, threading ids;
- ``wording``: what each stage says, command lists, time spans in words;
- ``templates``: Jinja2 lookup (the user's ``RULES_DIR/templates/`` first, then the package),
  sandbox, and the fallback to the shipped template when a user's one breaks;
- ``context``: ReminderContext and the values every loop template sees;
- ``messages``: the mails to the user; ``drafts``: the report-back draft to the mentor;
- ``digest_mail``: the weekly digest.
"""

from mailmentor.reminders.context import ReminderContext
from mailmentor.reminders.digest_mail import (
    build_digest_mail,
    digest_html,
    digest_key,
    digest_subject,
    digest_text,
)
from mailmentor.reminders.drafts import (
    MAX_DRAFT_QUOTE,
    asks_for_report,
    build_report_draft,
    report_draft_text,
)
from mailmentor.reminders.headers import (
    MAIL_POLICY,
    MAX_EXCERPT,
    MAX_NAME,
    MAX_REFERENCES,
    MAX_SUBJECT,
    clean_body,
    clean_message_id,
    clean_subject,
    encode_words,
    header_text,
    thread_references,
)
from mailmentor.reminders.messages import (
    build_give_up_notice,
    build_reminder,
    build_reply,
    build_still_relevant,
)
from mailmentor.reminders.templates import TEMPLATES_DIRNAME
from mailmentor.reminders.wording import HELP_TEXT, days_phrase, elapsed, human_span

__all__ = [
    "HELP_TEXT",
    "MAIL_POLICY",
    "MAX_DRAFT_QUOTE",
    "MAX_EXCERPT",
    "MAX_NAME",
    "MAX_REFERENCES",
    "MAX_SUBJECT",
    "TEMPLATES_DIRNAME",
    "ReminderContext",
    "asks_for_report",
    "build_digest_mail",
    "build_give_up_notice",
    "build_reminder",
    "build_reply",
    "build_report_draft",
    "build_still_relevant",
    "clean_body",
    "clean_message_id",
    "clean_subject",
    "days_phrase",
    "digest_html",
    "digest_key",
    "digest_subject",
    "digest_text",
    "elapsed",
    "encode_words",
    "header_text",
    "human_span",
    "report_draft_text",
    "thread_references",
]
