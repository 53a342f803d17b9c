"""HTTP for practice sets: the sentences assigned to a learner (included by ``router``)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response, status
from fastapi.responses import JSONResponse

from vocalborn.auth.dependencies import CurrentUser, SessionDep
from vocalborn.learning import assignments as assignment_service
from vocalborn.learning import goals as goal_service
from vocalborn.learning.access import learner_for
from vocalborn.learning.http import E401, E404_LEARNER, E422, err
from vocalborn.learning.schemas import (
    AssignmentCreate,
    AssignmentPublic,
    LearnerGoals,
)
from vocalborn.security.access import record_access

router = APIRouter()


@router.get(
    "/learners/{user_id}/assignments",
    response_model=list[AssignmentPublic],
    operation_id="list_assignments",
    tags=["assignments"],
    responses={**E401, **E404_LEARNER},
)
def list_assignments(user_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> list[AssignmentPublic]:
    """The sentences assigned to a learner, each with the learner's attempts, best and last score."""
    assignments = [AssignmentPublic.model_validate(a) for a in assignment_service.assignments(db, user, user_id)]
    record_access(db, user, user_id, "assignments")
    return assignments


@router.post(
    "/learners/{user_id}/assignments",
    status_code=status.HTTP_201_CREATED,
    response_model=AssignmentPublic,
    operation_id="add_assignment",
    tags=["assignments"],
    responses={
        200: {"model": AssignmentPublic, "description": "already assigned"},
        **E401,
        403: err("this needs the role admin or therapist"),
        404: err("learner or sentence not found"),
        **E422,
    },
)
def add_assignment(
    user_id: uuid.UUID, body: AssignmentCreate, user: CurrentUser, db: SessionDep, request: Request
) -> JSONResponse:
    """The linked therapist (or an admin) adds a sentence to the learner's practice set, with an
    optional weekly goal (attempts and/or minutes, days a week) and due date; adding it again
    updates the goal fields given (200)."""
    a, created = assignment_service.add_assignment(db, user, user_id, body.sentence_id, body.goals())
    item = next(x for x in assignment_service.assignments(db, user, user_id) if x["assignment_id"] == a.assignment_id)
    return JSONResponse(
        AssignmentPublic.model_validate(item).model_dump(mode="json"), status_code=201 if created else 200
    )


@router.delete(
    "/learners/{user_id}/assignments/{sentence_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    operation_id="remove_assignment",
    tags=["assignments"],
    responses={**E401, 403: err("this needs the role admin or therapist"), 404: err("not assigned")},
)
def remove_assignment(user_id: uuid.UUID, sentence_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> Response:
    assignment_service.remove_assignment(db, user, user_id, sentence_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/learners/{user_id}/goals",
    response_model=LearnerGoals,
    operation_id="get_learner_goals",
    tags=["assignments"],
    responses={**E401, **E404_LEARNER},
)
def get_goals(user_id: uuid.UUID, user: CurrentUser, db: SessionDep) -> LearnerGoals:
    """This week against the practice set's goals (attempts that count only): per sentence the
    attempts, minutes and days done, what is due today and this week; the streak and the dose."""
    learner = learner_for(db, user, user_id)
    goals = LearnerGoals.model_validate(goal_service.learner_goals(db, user_id, readers=(learner, user)))
    record_access(db, user, user_id, "goals")
    return goals
