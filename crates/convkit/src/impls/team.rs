//! Fork-join with spinning helpers: [`join`] is `rayon::join` for the implementations'
//! splits, at a fraction of its cost for short jobs.
//!
//! A convolution splits its output once or twice per call (staging, then the tiles), and on a
//! small layer each part lasts tens of microseconds. `rayon::join` called from outside the
//! pool injects the job and puts the caller to sleep on a latch; a worker that fell asleep
//! must be woken. Each sleep and wake-up is a system call and, in a virtual machine, an
//! inter-processor interrupt: measured on the 2-core Zen 4 VM, a `rayon::join` of two 16 µs
//! halves took 30 µs instead of 16, where handing the second half to a thread spinning on a
//! flag took 16.6 µs. So the engine keeps its own helpers (one per core beyond the first),
//! started on first use. Called from outside any rayon pool, [`join`] hands `b` to a free
//! helper, runs `a` on the calling thread, then waits for `b`. A helper spins for [`SPIN`]
//! after each job before it parks, so the parts of one call, and calls in quick succession,
//! find it awake. Called from a rayon worker, `join` is `rayon::join`: the caller's pool
//! bounds the parallelism. When no helper is free (concurrent callers, nested splits, more
//! threads than cores) it falls back to `rayon::join`, so it never runs fewer parts at once
//! than before; in a child process forked after the helpers started (which has none of them)
//! it runs `a` then `b`. Which thread computes a part never changes its result: every
//! implementation sums in the same order whatever the split.
#![allow(unsafe_code)]

use std::cell::UnsafeCell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::{Duration, Instant};

/// How long a helper spins for its next job before it parks.
const SPIN: Duration = Duration::from_micros(200);

/// Spin-wait rounds per yield (see [`pause`]).
const YIELD_EVERY: u32 = 32;

/// Helper states.
const FREE: u32 = 0; // spinning, waiting for a job
const PARKED: u32 = 1; // asleep, waiting for a job and an unpark
const CLAIMED: u32 = 2; // a caller is writing its job into the slot
const READY: u32 = 3; // the job is in the slot
const BUSY: u32 = 4; // the helper is running it

/// A type-erased job on a caller's stack: `run(data)` runs it.
#[derive(Clone, Copy)]
struct JobRef {
    data: *const (),
    run: unsafe fn(*const ()),
}

struct Slot {
    state: AtomicU32,
    /// Written by the caller that moved `state` to `CLAIMED`, read by the helper after it
    /// sees `READY`.
    job: UnsafeCell<Option<JobRef>>,
    thread: OnceLock<Thread>,
}

// SAFETY: `job` is written only by the one caller that claimed the slot (`FREE`/`PARKED` →
// `CLAIMED` by compare-exchange) before it publishes `READY` with release ordering, and read
// only by the helper after it observes `READY` with acquire ordering; the job it points to is
// `Sync`-safe to run on another thread (see `join`).
unsafe impl Sync for Slot {}
// SAFETY: as for `Sync`: the job pointer in the slot is only dereferenced under that protocol.
unsafe impl Send for Slot {}

struct Team {
    slots: Vec<Slot>,
    /// The process the helpers were started in: a child forked after that has none of them.
    pid: u32,
}

fn team() -> &'static Team {
    static TEAM: OnceLock<Team> = OnceLock::new();
    TEAM.get_or_init(|| {
        let helpers = std::thread::available_parallelism().map_or(1, |n| n.get()).saturating_sub(1).max(1);
        Team {
            slots: (0..helpers)
                .map(|_| Slot {
                    state: AtomicU32::new(PARKED),
                    job: UnsafeCell::new(None),
                    thread: OnceLock::new(),
                })
                .collect(),
            pid: std::process::id(),
        }
    })
}

/// The helper thread of `slot`; `None` when it was started just now (see below) or could not be
/// started, and the caller runs both halves through rayon this time.
fn helper(slot: &'static Slot) -> Option<&'static Thread> {
    if let Some(t) = slot.thread.get() {
        return Some(t);
    }
    // Only the caller holding the slot (CLAIMED) gets here, so one thread is spawned per slot.
    // The new helper parks at once (the slot goes back to PARKED) and takes its first job from
    // the next split, so the scheduler places it by wake-up rather than beside its creator. A
    // precaution only: the two-thread slowdowns it was meant to cure (small layers at one-thread
    // speed for minutes) came back with it, and instrumented runs showed both halves of every
    // split running in parallel, each slower: contention outside convkit.
    let handle = std::thread::Builder::new().name("convkit-helper".into()).spawn(move || serve(slot)).ok()?;
    slot.thread.get_or_init(|| handle.thread().clone());
    None
}

/// A helper's loop: wait for a job (spinning, then parked), run it, repeat.
fn serve(slot: &'static Slot) {
    loop {
        let mut since = Instant::now();
        let mut spins = 0u32;
        loop {
            match slot.state.load(Ordering::Acquire) {
                READY => break,
                PARKED => {
                    std::thread::park();
                    since = Instant::now();
                }
                _ => {
                    pause(spins);
                    spins = spins.wrapping_add(1);
                    if spins.is_multiple_of(256) && since.elapsed() > SPIN {
                        // Parks at the next round unless a caller claimed the slot meanwhile.
                        let _ =
                            slot.state.compare_exchange(FREE, PARKED, Ordering::AcqRel, Ordering::Relaxed);
                    }
                }
            }
        }
        slot.state.store(BUSY, Ordering::Relaxed);
        // SAFETY: the state was READY, published with release ordering after the caller wrote
        // the job (observed with acquire ordering above).
        let job = unsafe { (*slot.job.get()).take() };
        if let Some(job) = job {
            // SAFETY: the caller keeps the job alive until it sees the job's `done` flag,
            // which `run` sets last.
            unsafe { (job.run)(job.data) };
        }
        slot.state.store(FREE, Ordering::Release);
    }
}

/// One round of a spin-wait: mostly a pause, every [`YIELD_EVERY`]-th round a yield of the
/// core, so a waiting thread that shares its core with the thread it waits for (the
/// scheduler may put them there) hands it over within microseconds instead of a time slice.
fn pause(round: u32) {
    if round % YIELD_EVERY == YIELD_EVERY - 1 {
        std::thread::yield_now();
    } else {
        std::hint::spin_loop();
    }
}

/// `b` and where its result goes, on the caller's stack.
struct StackJob<B, RB> {
    f: UnsafeCell<Option<B>>,
    result: UnsafeCell<Option<std::thread::Result<RB>>>,
    done: AtomicBool,
}

impl<B: FnOnce() -> RB, RB> StackJob<B, RB> {
    /// # Safety
    /// `data` points to a live `StackJob<B, RB>` whose `f` no one else touches until `done`.
    unsafe fn run(data: *const ()) {
        // SAFETY: caller's contract.
        let job = unsafe { &*(data as *const Self) };
        // SAFETY: only this helper touches `f` and `result` until `done` is set.
        let f = unsafe { (*job.f.get()).take() };
        let r = catch_unwind(AssertUnwindSafe(|| f.expect("job run once")()));
        // SAFETY: as above.
        unsafe { *job.result.get() = Some(r) };
        job.done.store(true, Ordering::Release);
    }
}

/// Run `a` and `b`, possibly in parallel, and return both results (like `rayon::join`; a
/// panic in either is resumed here after both have finished).
pub(crate) fn join<A, B, RA, RB>(a: A, b: B) -> (RA, RB)
where
    A: FnOnce() -> RA + Send,
    B: FnOnce() -> RB + Send,
    RA: Send,
    RB: Send,
{
    // Inside a rayon pool, the caller's pool bounds the parallelism (and its workers, busy
    // waiting here, could not run the jobs a nested split hands back to it).
    if rayon::current_thread_index().is_some() {
        return rayon::join(a, b);
    }
    let team = team();
    if team.pid != std::process::id() {
        // A forked child: the helpers (and rayon's workers) stayed in the parent.
        return (a(), b());
    }
    for slot in &team.slots {
        let s = slot.state.load(Ordering::Relaxed);
        if (s != FREE && s != PARKED)
            || slot.state.compare_exchange(s, CLAIMED, Ordering::Acquire, Ordering::Relaxed).is_err()
        {
            continue;
        }
        let Some(thread) = helper(slot) else {
            slot.state.store(s, Ordering::Release);
            break;
        };
        let job = StackJob {
            f: UnsafeCell::new(Some(b)),
            result: UnsafeCell::new(None),
            done: AtomicBool::new(false),
        };
        // SAFETY: this caller holds the slot (CLAIMED); the helper reads `job` only after READY.
        unsafe {
            *slot.job.get() =
                Some(JobRef { data: &job as *const _ as *const (), run: StackJob::<B, RB>::run });
        }
        slot.state.store(READY, Ordering::Release);
        if s == PARKED {
            thread.unpark();
        }
        let ra = catch_unwind(AssertUnwindSafe(a));
        // `job` must outlive the helper's use of it: wait for `done` whatever `a` did.
        let mut spins = 0u32;
        while !job.done.load(Ordering::Acquire) {
            pause(spins);
            spins = spins.wrapping_add(1);
        }
        // SAFETY: `done` (acquire) follows the helper's write of `result`; it no longer
        // touches `job`.
        let rb = unsafe { (*job.result.get()).take() }.expect("helper stored a result");
        return match (ra, rb) {
            (Ok(ra), Ok(rb)) => (ra, rb),
            (Err(p), _) | (_, Err(p)) => resume_unwind(p),
        };
    }
    rayon::join(a, b)
}

#[cfg(test)]
mod tests {
    use super::join;

    #[test]
    fn joins_return_both_results_nested_and_concurrent() {
        fn sum(v: &[u64]) -> u64 {
            if v.len() < 64 {
                return v.iter().sum();
            }
            let (l, r) = v.split_at(v.len() / 2);
            let (a, b) = join(|| sum(l), || sum(r));
            a + b
        }
        let v: Vec<u64> = (0..10_000).collect();
        let want: u64 = v.iter().sum();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..50 {
                        assert_eq!(sum(&v), want);
                    }
                });
            }
        });
    }

    #[test]
    fn a_panic_in_either_half_reaches_the_caller_after_both_ran() {
        use std::sync::atomic::{AtomicBool, Ordering};
        for first in [true, false] {
            let other_ran = AtomicBool::new(false);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                let boom = || panic!("boom");
                let ok = || {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                    other_ran.store(true, Ordering::SeqCst)
                };
                if first {
                    join(boom, ok);
                } else {
                    join(ok, boom);
                }
            }));
            assert!(r.is_err(), "the panic is resumed");
            assert!(other_ran.load(Ordering::SeqCst), "the other half finished first");
        }
    }
}
