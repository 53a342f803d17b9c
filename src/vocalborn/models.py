"""Every table, imported in dependency order so the metadata is complete."""

from vocalborn.auth.models import Role, User
from vocalborn.learning.models import LinkInvitation, SentenceAssignment, TherapistReview, TherapistReviewRevision
from vocalborn.practice.models import PracticeRecord, PracticeSession, RecordStatus, Sentence
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent

__all__ = [
    "AIAnalysisResult",
    "AIAnalysisTask",
    "AIAnalysisTaskEvent",
    "LinkInvitation",
    "PracticeRecord",
    "PracticeSession",
    "RecordStatus",
    "Role",
    "Sentence",
    "SentenceAssignment",
    "TherapistReview",
    "TherapistReviewRevision",
    "User",
]
