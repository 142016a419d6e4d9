//! Plans used from inside a caller's own rayon pool: no deadlock (a watchdog fails the test
//! after 120 s), no thread of convkit's own (every thread that appears while the caller's
//! tasks run belongs to the caller's pool, so the work is not oversubscribed), and results
//! bit-identical to runs outside the pool. Alone in its file: it counts the process's threads.

use convkit::filter::{Filter, FilterOptions, FilterPlan, Planar};
use convkit::{ConvDesc, ConvPlan, ConvProblem, Padding, PlanOptions};
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

/// The process's thread ids.
fn threads() -> BTreeSet<u64> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

fn thread_name(tid: u64) -> String {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default().trim().to_string()
}

fn run_with_watchdog(f: impl FnOnce() + Send + 'static) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("watched".into())
        .spawn(move || {
            f();
            let _ = tx.send(());
        })
        .unwrap();
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
            panic!("nested use did not finish in 120 s: deadlock")
        }
        Err(_) => panic!("the nested run panicked"),
    }
}

#[test]
fn plans_inside_a_callers_rayon_pool() {
    let p =
        ConvProblem::new(&ConvDesc::new().padding(Padding::Same), &[1, 16, 24, 24], &[16, 16, 3, 3]).unwrap();
    let w = data(16 * 16 * 9, 1);
    let xs: Vec<Vec<f32>> = (0..16).map(|i| data(16 * 24 * 24, 10 + i)).collect();
    let filters = [Filter::parse("gaussian:2").unwrap(), Filter::parse("sobel").unwrap()];
    let fopts = FilterOptions::default().tile_rows(5);
    let imgs: Vec<Planar<f32>> =
        (0..16).map(|i| Planar::new(3, 30, 33, data(3 * 30 * 33, 50 + i)).unwrap()).collect();

    // Serial results, outside any pool (this starts rayon's global pool).
    let out_plan = ConvPlan::new(&p, &w, &PlanOptions::new().threads(4)).unwrap();
    let fplan = FilterPlan::new(&filters, &fopts, 3, 30, 33).unwrap();
    let want: Vec<Vec<f32>> = xs.iter().map(|x| out_plan.run(x, None).unwrap()).collect();
    let want_f: Vec<Vec<f32>> = imgs.iter().map(|im| fplan.run(im, &mut |_, _| {}).unwrap().data).collect();

    for pool_threads in [1, 2, 3] {
        let before = threads();
        let (p, w, xs, imgs, want, want_f) =
            (p.clone(), w.clone(), xs.clone(), imgs.clone(), want.clone(), want_f.clone());
        let fplan = fplan.clone();
        let seen = std::sync::Arc::new(Mutex::new(BTreeSet::new()));
        let seen2 = seen.clone();
        run_with_watchdog(move || {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(pool_threads)
                .thread_name(|i| format!("caller-{i}"))
                .build()
                .unwrap();
            pool.install(|| {
                // A plan built inside the pool takes the pool's size; one built outside keeps 4.
                let inner = ConvPlan::new(&p, &w, &PlanOptions::new()).unwrap();
                assert_eq!(inner.threads(), pool_threads);
                let outer = ConvPlan::new(&p, &w, &PlanOptions::new().threads(4)).unwrap();
                (0..xs.len()).into_par_iter().for_each(|i| {
                    for plan in [&inner, &outer] {
                        let got = plan.run(&xs[i], None).unwrap();
                        assert!(got == want[i], "conv {i} in a {pool_threads}-thread pool differs");
                    }
                    let got = fplan.run(&imgs[i], &mut |_, _| {}).unwrap().data;
                    assert!(got == want_f[i], "filter {i} in a {pool_threads}-thread pool differs");
                    let now: Vec<(u64, String)> =
                        threads().into_iter().map(|t| (t, thread_name(t))).collect();
                    seen2.lock().unwrap().extend(now);
                });
            });
        });
        let new: Vec<String> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| !before.contains(t))
            .map(|(_, n)| n.clone())
            .collect();
        assert!(!new.is_empty(), "no thread was seen");
        // The watched thread that owns the pool is the one other thread that appears.
        let foreign: Vec<&String> =
            new.iter().filter(|n| !n.starts_with("caller-") && *n != "watched").collect();
        assert!(foreign.is_empty(), "threads other than the caller's pool appeared: {foreign:?}");
        let callers = new.iter().filter(|n| n.starts_with("caller-")).count();
        assert!(callers <= pool_threads, "{callers} caller threads for a pool of {pool_threads}");
    }
}
