"""FairLock: waiters get the lock in arrival order, and one that gives up leaves the line."""

from __future__ import annotations

import threading
import time

import pytest

from agent.fair_lock import FairLock


def _wait_until(condition, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def _queue_in_order(lock: FairLock, n: int, run) -> list[threading.Thread]:
    """Start n threads calling run(i), each only after the previous one is waiting."""
    threads = []
    for i in range(n):
        t = threading.Thread(target=run, args=(i,), daemon=True)  # a failing test never hangs
        t.start()
        _wait_until(lambda i=i: lock.waiting == i + 1)
        threads.append(t)
    return threads


def test_waiters_get_the_lock_in_the_order_they_asked() -> None:
    lock, order = FairLock(), []
    lock.acquire()

    def take(i: int) -> None:
        with lock.held():
            order.append(i)

    threads = _queue_in_order(lock, 6, take)
    lock.release()
    for t in threads:
        t.join(timeout=5)
    assert order == list(range(6))
    assert lock.waiting == 0


def test_a_waiter_that_gives_up_leaves_its_place_to_the_next() -> None:
    lock, order, results = FairLock(poll_s=0.01), [], {}
    leave = threading.Event()
    lock.acquire()

    def take(i: int) -> None:
        give_up = leave.is_set if i == 1 else None
        results[i] = lock.acquire(give_up=give_up)
        if results[i]:
            order.append(i)
            lock.release()

    threads = _queue_in_order(lock, 3, take)
    leave.set()
    _wait_until(lambda: lock.waiting == 2)  # waiter 1 left while the lock was still held
    lock.release()
    for t in threads:
        t.join(timeout=5)
    assert results == {0: True, 1: False, 2: True}
    assert order == [0, 2]


def test_giving_up_at_the_head_of_the_line_lets_the_next_one_run() -> None:
    lock, got = FairLock(poll_s=0.01), threading.Event()
    lock.acquire()
    first_leaves = threading.Event()

    def first(_: int) -> None:
        assert not lock.acquire(give_up=first_leaves.is_set)

    def second(_: int) -> None:
        with lock.held():
            got.set()

    t1 = threading.Thread(target=first, args=(0,), daemon=True)
    t1.start()
    _wait_until(lambda: lock.waiting == 1)
    t2 = threading.Thread(target=second, args=(1,), daemon=True)
    t2.start()
    _wait_until(lambda: lock.waiting == 2)
    first_leaves.set()  # the head of the line leaves while the lock is held...
    t1.join(timeout=5)
    lock.release()  # ...so the lock goes to the next in line
    assert got.wait(5)
    t2.join(timeout=5)


def test_release_without_acquire_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not held"):
        FairLock().release()
