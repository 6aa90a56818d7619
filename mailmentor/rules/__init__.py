"""Rule files: the user's cadence for reminders, loaded from ``rules/*.yaml``.

``load_rules(directory)`` gives a validated ``Rules`` or raises ``RulesError`` listing every
problem as ``file:line:column: field: message``; callers keep the last good ``Rules`` on error.
"""

from mailmentor.rules.loader import default_rules_dir, load_rules, load_rules_file, rule_files
from mailmentor.rules.model import WORKING_STAGES, Rules, RuleSet, StageRule

__all__ = [
    "WORKING_STAGES",
    "RuleSet",
    "Rules",
    "StageRule",
    "default_rules_dir",
    "load_rules",
    "load_rules_file",
    "rule_files",
]
