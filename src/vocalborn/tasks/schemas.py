from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class AnalysisParameters(BaseModel):
    model_config = ConfigDict(extra="forbid")

    analysis_type: Literal["full"] = "full"
    include_suggestions: bool = True
    model_version: str | None = Field(default=None, max_length=50)
    language: Literal["zh-TW", "en"] = "zh-TW"


class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    practice_record_id: uuid.UUID
    parameters: AnalysisParameters = Field(default_factory=AnalysisParameters)
    reanalyse: bool = Field(
        default=False,
        description="analyse again even if the record already has a successful analysis "
        "(otherwise that analysis is returned, 200 with created: false)",
    )


class SubmitResponse(BaseModel):
    task_id: uuid.UUID
    celery_task_id: str
    status: str
    estimated_completion_time: datetime | None
    queue_position: int | None
    practice_record_id: uuid.UUID
    created: bool = Field(
        description="false when an existing task is returned: the one of this Idempotency-Key, the record's "
        "active task, or (without reanalyse) its latest successful analysis"
    )


class TaskStatusResponse(BaseModel):
    task_id: uuid.UUID
    practice_record_id: uuid.UUID
    status: str
    progress: int
    current_step: str | None
    total_steps: int
    started_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    estimated_remaining_time: str | None = Field(description="ISO 8601 duration, e.g. PT45S")
    queue_position: int | None
    worker_name: str | None
    attempt: int
    retry_count: int
    max_retries: int
    error_message: str | None


class TaskResultResponse(BaseModel):
    task_id: uuid.UUID
    result_id: uuid.UUID
    overall_score: float | None
    pronunciation_accuracy: float | None
    fluency_score: float | None
    rhythm_score: float | None
    completeness_score: float | None = Field(
        default=None,
        description="share 0..100 of the sentence's judged characters the attempt said; null for results "
        "older than the measure or analysed without sentence text",
    )
    counted: bool = Field(
        default=True, description="whether the attempt counts in trends, means, dose and flags (issue #26)"
    )
    not_counted_reason: str | None = Field(
        default=None, description="when it does not count: silent, too_short or wrong_sentence"
    )
    not_counted_text: str | None = Field(default=None, description="the reason in the caller's language")
    detailed_analysis: dict[str, Any]
    sentence_analyses: list[dict[str, Any]] | None
    suggestions: str | None
    improvement_areas: list[str] | None
    analysis_model_version: str | None
    engine_fallback: bool = Field(
        default=False,
        description="true when the remote analysis service was down and the local engine analysed it "
        "(AI_ENGINE_FALLBACK=local); analysis_model_version names the local engine then",
    )
    processing_time_seconds: float | None
    completed_at: datetime | None


class SessionTasksResponse(BaseModel):
    practice_session_id: uuid.UUID
    counts: dict[str, int]
    tasks: list[TaskStatusResponse]


class TaskEventResponse(BaseModel):
    event_id: int
    task_id: uuid.UUID
    event_type: str
    status: str
    progress: int
    current_step: str | None
    attempt: int
    worker_name: str | None
    message: str | None
    timestamp: datetime
