"""Every table, imported in dependency order so the metadata is complete."""

from vocalborn.activity.models import LearnerActivityAttempt, LearnerActivityDay
from vocalborn.auth.models import AuthSession, RecoveryCode, RefreshToken, Role, User
from vocalborn.events.models import EventDeadLetter, EventOutbox
from vocalborn.learning.models import LinkInvitation, SentenceAssignment, TherapistReview, TherapistReviewRevision
from vocalborn.notify.models import AccountToken, Notification, NotificationPreferences
from vocalborn.practice.models import PracticeRecord, PracticeSession, RecordStatus, Sentence
from vocalborn.security.models import DataAccessLog, TherapistInvitation
from vocalborn.tasks.models import AIAnalysisResult, AIAnalysisTask, AIAnalysisTaskEvent
from vocalborn.webhooks.models import WebhookDelivery, WebhookEndpoint

__all__ = [
    "AccountToken",
    "Notification",
    "NotificationPreferences",
    "LearnerActivityAttempt",
    "LearnerActivityDay",
    "AuthSession",
    "EventDeadLetter",
    "RecoveryCode",
    "RefreshToken",
    "AIAnalysisResult",
    "AIAnalysisTask",
    "AIAnalysisTaskEvent",
    "DataAccessLog",
    "EventOutbox",
    "LinkInvitation",
    "PracticeRecord",
    "PracticeSession",
    "RecordStatus",
    "Role",
    "Sentence",
    "TherapistInvitation",
    "SentenceAssignment",
    "TherapistReview",
    "TherapistReviewRevision",
    "User",
    "WebhookDelivery",
    "WebhookEndpoint",
]
