"""Rules that follow their directory: edits apply without a restart; a broken edit keeps the
last good rules in force."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from mailmentor.errors import RulesError
from mailmentor.rules import Rules, load_rules, rule_files

log = logging.getLogger("mailmentor.rules")


class LiveRules:
    """Holds the last good Rules for a directory and reloads them when a file changes."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._lock = threading.Lock()
        self._rules = load_rules(directory)  # at start-up there is no "last good": fail loudly
        self._stamp = self._fingerprint()
        self.last_error: RulesError | None = None

    def __call__(self) -> Rules:
        with self._lock:
            return self._rules

    def _fingerprint(self) -> tuple[tuple[str, int, int], ...]:
        try:
            files = rule_files(self.directory)
        except (OSError, RulesError):
            return ()
        stamp = []
        for path in files:
            try:
                stat = path.stat()
            except OSError:
                continue
            stamp.append((str(path), stat.st_mtime_ns, stat.st_size))
        return tuple(stamp)

    def reload_if_changed(self) -> bool:
        """True when new rules took effect (callers then re-plan open loops)."""
        stamp = self._fingerprint()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            rules = load_rules(self.directory)
        except RulesError as exc:
            self.last_error = exc
            log.error("rule files have errors; keeping the last good rules:\n%s", exc)
            return False
        with self._lock:
            self._rules = rules
        self.last_error = None
        log.info("rules reloaded from %s", self.directory)
        return True
