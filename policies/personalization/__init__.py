"""The personalization strategies of docs/domain.md as policies: content, subject line,
send time."""

from policies.personalization.rules import (
    ContentStrategyPolicy,
    SubjectRulePolicy,
    content_strategy,
    personalization_level,
    subject_style,
)
from policies.personalization.send_time import HOUR_NAMES, FixedHourPolicy, SendTimeOptimizer
from policies.personalization.subject import (
    SUBJECT_FEATURE_NAMES,
    SUBJECT_TEMPLATES,
    LearnedSubjectPicker,
    render_subject,
    subject_features,
)

__all__ = [
    "HOUR_NAMES",
    "SUBJECT_FEATURE_NAMES",
    "SUBJECT_TEMPLATES",
    "ContentStrategyPolicy",
    "FixedHourPolicy",
    "LearnedSubjectPicker",
    "SendTimeOptimizer",
    "SubjectRulePolicy",
    "content_strategy",
    "personalization_level",
    "render_subject",
    "subject_features",
    "subject_style",
]
