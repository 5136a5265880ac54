"""storage.scoped: one NotAllowed and one Stale for all of storage."""

from __future__ import annotations

from storage import mentoring, nominations, review_queries, scoped, trainings


def test_refusals_are_one_type_each() -> None:
    # The chat layer maps each refusal once, whichever module raised it.
    assert nominations.NotAllowed is scoped.NotAllowed
    assert mentoring.Stale is scoped.Stale
    assert review_queries.Stale is scoped.Stale
    # An audience that changed is still a refusal.
    assert issubclass(trainings.AudienceChanged, scoped.NotAllowed)
