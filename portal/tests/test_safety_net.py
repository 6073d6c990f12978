"""The safety net's registry: apps put their kinds of work under it; portal imports none of them."""

from portal import tasks


def test_apps_register_their_kinds_of_work():
    assert set(tasks.requeuers()) >= {"deliveries", "card_edits", "writebacks"}


def test_a_registered_kind_is_claimed_in_the_tick_and_queued_after_it(db, monkeypatch):
    queued, windows = [], []

    class FakeTask:
        @staticmethod
        def delay(pk):
            queued.append(pk)

    def claim(window):
        windows.append(window)
        return [7, 8]

    tasks.register_requeuer("test_kind", claim, FakeTask)
    try:
        result = tasks.requeue_stale_work()
    finally:
        tasks._REQUEUERS.pop("test_kind")
    assert result["test_kind"] == 2 and queued == [7, 8]
    window = windows[0]
    assert window.stale == window.now - tasks.STALE_AFTER and window.lease == window.now + tasks.STALE_AFTER
    assert window.retry_overdue == window.now  # in-process (eager): due is due
