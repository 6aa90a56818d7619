"""Rule files: the user's cadence for reminders, loaded from ``rules/*.yaml``.

``load_rules(directory)`` gives a validated ``Rules`` or raises ``RulesError`` listing every
problem as ``file:line:column: field: message``; callers keep the last good ``Rules`` on error.
``Rules.for_loop(loop)`` picks the rule set for a loop; the language is in ``docs/rules.md``.
"""

from mailmentor.rules.loader import default_rules_dir, load_rules, load_rules_file, rule_files
from mailmentor.rules.model import (
    DEFAULT_DIGEST_TIME,
    WORKING_STAGES,
    Rules,
    RuleSet,
    StageRule,
    mentor_matches,
)

__all__ = [
    "DEFAULT_DIGEST_TIME",
    "WORKING_STAGES",
    "RuleSet",
    "Rules",
    "StageRule",
    "default_rules_dir",
    "load_rules",
    "load_rules_file",
    "mentor_matches",
    "rule_files",
]
