"""Find and render the Jinja2 templates of our mails: the user's overrides first, then ours.

Templates (``<name>.txt.j2`` / ``<name>.html.j2``) are looked up first in the user's
``RULES_DIR/templates/``, then in the package (``mailmentor/templates/``). A user template that
does not compile or render is logged with its file and line, and the shipped one is used instead:
a typo never costs a reminder. The variables templates see are listed in docs/rules.md.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from time import monotonic
from typing import Any

import jinja2
import jinja2.sandbox

#: The logger of all mail rendering (users filter on it: keep the name).
log = logging.getLogger("mailmentor.reminders")

#: User templates live in this folder of RULES_DIR, apart from the rule files.
TEMPLATES_DIRNAME = "templates"

_ENV_OPTIONS: dict[str, Any] = {
    "autoescape": jinja2.select_autoescape(
        enabled_extensions=("html.j2", "html"), default_for_string=False, default=False
    ),
    "undefined": jinja2.StrictUndefined,
    "trim_blocks": True,
    "lstrip_blocks": True,
    "keep_trailing_newline": True,
}


def _quote(text: str) -> str:
    return "\n".join(f"> {line}" if line else ">" for line in text.splitlines())


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    """The shipped templates only: the fallback that always renders."""
    env = jinja2.Environment(loader=jinja2.PackageLoader("mailmentor", "templates"), **_ENV_OPTIONS)
    env.filters["quote"] = _quote
    return env


@lru_cache(maxsize=8)
def _user_environment(directory: Path) -> jinja2.Environment:
    """The user's folder first, then the shipped templates.

    Sandboxed, since the rule folder may be writable by more people than the service's code;
    Jinja re-reads a template whose file changed, so edits apply without a restart.
    """
    loader = jinja2.ChoiceLoader(
        [jinja2.FileSystemLoader(str(directory)), jinja2.PackageLoader("mailmentor", "templates")]
    )
    env = jinja2.sandbox.ImmutableSandboxedEnvironment(loader=loader, **_ENV_OPTIONS)
    env.filters["quote"] = _quote
    return env


@dataclass(frozen=True)
class Rendered:
    """One body, and the subject its template set with ``{% set mail_subject = … %}``, if any."""

    body: str
    subject: str | None


#: How long which of a list of names exists is taken as known (seconds): a new override file
#: applies within this; an edited one at once (its file's time is checked at every render).
CHOICE_RECHECK = 2.0
_choices: dict[tuple[int, tuple[str, ...]], tuple[jinja2.Environment, jinja2.Template, float]] = {}
_choices_lock = threading.Lock()


def _select(env: jinja2.Environment, files: tuple[str, ...]) -> jinja2.Template:
    """``env.select_template(files)``, remembering the choice for a moment: a burst of mails
    would otherwise look for every missing override on disk, twice a mail."""
    key = (id(env), files)
    now = monotonic()
    with _choices_lock:
        known = _choices.get(key)
    fresh = known is not None and known[0] is env and now - known[2] < CHOICE_RECHECK
    if known is not None and fresh and known[1].is_up_to_date:
        return known[1]
    template = env.select_template(list(files))
    with _choices_lock:
        if len(_choices) > 256:
            _choices.clear()
        _choices[key] = (env, template, now)
    return template


def _render_with(
    env: jinja2.Environment, names: Sequence[str], suffix: str, values: dict[str, Any]
) -> Rendered:
    template = _select(env, tuple(f"{name}.{suffix}.j2" for name in names))
    try:
        module = template.make_module(values)
    except Exception:
        env.handle_exception()  # re-raises with template file and line in the traceback
        raise
    subject = getattr(module, "mail_subject", None)
    return Rendered(str(module), subject if isinstance(subject, str) else None)


def _where(exc: BaseException) -> str:
    """``file:line`` of a template error, as far as Jinja tells."""
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return f"{exc.filename or exc.name or '?'}:{exc.lineno}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith(".j2")]
    if frames:
        return f"{frames[-1].filename}:{frames[-1].lineno}"
    return "?"


def render_part(
    templates_dir: Path | None, names: Sequence[str], suffix: str, values: dict[str, Any]
) -> Rendered:
    """Render the first of ``names`` that exists (``suffix`` "txt" or "html").

    With the user's overrides in ``templates_dir`` first; a broken one is logged and the shipped
    one used.
    """
    if templates_dir is not None:
        try:
            return _render_with(_user_environment(templates_dir), names, suffix, values)
        except Exception as exc:  # a user's typo must never cost the reminder
            log.error(
                "template %s is broken, using the shipped template instead: %s: %s",
                _where(exc),
                type(exc).__name__,
                exc,
            )
    return _render_with(_environment(), names, suffix, values)


def check_chosen(templates_dir: Path | None, template: str | None, names: Sequence[str]) -> None:
    """A rule naming a template that exists nowhere is worth a warning (the mail still goes)."""
    if not template or names[0] != template:
        return
    env = _user_environment(templates_dir) if templates_dir else _environment()
    try:
        env.get_template(f"{template}.txt.j2")
    except jinja2.TemplateNotFound:
        where = f"{templates_dir} or the package" if templates_dir else "the package"
        log.warning(
            "template %r (from the rules) not found in %s; using %s",
            template,
            where,
            " / ".join(names[1:]),
        )
    except Exception:  # broken, not missing: render_part logs it with its line
        return
