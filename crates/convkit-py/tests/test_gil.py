"""The GIL is released while convkit computes: two Python threads running a large conv overlap.

No timing is asserted. The interpreter's switch interval is raised to an hour, so a thread holding
the GIL keeps it until it blocks. Each thread notes how many convs had finished when it entered
its own, then runs it. If conv kept the GIL, the first thread would run its conv to the end before
the second could start (the second would see 1 finished); with the GIL released, the second enters
while the first is still inside convkit (both see 0)."""
import sys
import threading

import numpy as np

import convkit


def test_two_threads_overlap():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 32, 96, 96)).astype(np.float32)
    w = rng.standard_normal((64, 32, 3, 3)).astype(np.float32)
    finished = []
    seen = {}
    inside = []
    barrier = threading.Barrier(2)
    results = {}

    def work(name):
        barrier.wait()
        seen[name] = len(finished)
        inside.append(name)
        results[name] = convkit.conv(x, w, padding=1, threads=1)
        finished.append(name)

    old = sys.getswitchinterval()
    sys.setswitchinterval(3600.0)
    try:
        threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(old)
    assert sorted(finished) == ["a", "b"]
    assert seen == {"a": 0, "b": 0}, f"a thread entered conv only after the other's finished: {seen}"
    assert np.array_equal(results["a"], results["b"])


def test_other_thread_runs_python_during_conv():
    """While a conv runs in one thread, the main thread takes the GIL and sees it unfinished."""
    x = np.ones((16, 32, 96, 96), np.float32)
    w = np.ones((64, 32, 3, 3), np.float32)
    entering = threading.Event()
    done = threading.Event()

    def work():
        entering.set()
        convkit.conv(x, w, padding=1, threads=1)
        done.set()

    old = sys.getswitchinterval()
    sys.setswitchinterval(3600.0)
    try:
        t = threading.Thread(target=work)
        t.start()
        entering.wait()
        # We hold the GIL again only once the worker blocked: inside convkit, not after it.
        during = done.is_set()
        t.join()
    finally:
        sys.setswitchinterval(old)
    assert not during
    assert done.is_set()
