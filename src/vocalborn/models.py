"""Every table, imported in dependency order so the metadata is complete."""

from vocalborn.auth.models import Role, User
from vocalborn.practice.models import PracticeRecord, PracticeSession, RecordStatus, Sentence
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent

__all__ = [
    "AIAnalysisResult",
    "AIAnalysisTask",
    "AIAnalysisTaskEvent",
    "PracticeRecord",
    "PracticeSession",
    "RecordStatus",
    "Role",
    "Sentence",
    "User",
]
