//! A plan run with more threads than cores from inside a one-worker rayon pool must not
//! deadlock. Inside a pool, splits run on `rayon::join` (the waiting worker steals the other
//! half); when they went to convkit's spinning helpers instead, a nested split that found no
//! free helper fell back to the pool whose only worker was waiting for it, and hung. Its own
//! test binary, since the global pool can be configured once per process.

use convkit::plan::{ConvPlan, PlanOptions};
use convkit::{ConvDesc, ConvProblem, Padding};

#[test]
fn more_threads_than_cores_inside_a_one_worker_global_pool() {
    rayon::ThreadPoolBuilder::new().num_threads(1).build_global().expect("the first use of the global pool");
    let (x_shape, w_shape) = ([2usize, 8, 23, 19], [16usize, 8, 3, 3]);
    let p = ConvProblem::new(&ConvDesc::new().padding(Padding::uniform(1)), &x_shape, &w_shape).unwrap();
    let x: Vec<f32> = (0..x_shape.iter().product::<usize>()).map(|i| ((i * 7) % 13) as f32 - 6.0).collect();
    let w: Vec<f32> = (0..w_shape.iter().product::<usize>()).map(|i| ((i * 5) % 11) as f32 - 5.0).collect();
    let one =
        ConvPlan::new(&p, &w, &PlanOptions::new().threads(1).exact(true)).unwrap().run(&x, None).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    rayon::spawn(move || {
        let mut outs = Vec::new();
        for threads in [3, 4, 7] {
            let plan = ConvPlan::new(&p, &w, &PlanOptions::new().threads(threads).exact(true)).unwrap();
            outs.push(plan.run(&x, None).unwrap());
        }
        tx.send(outs).unwrap();
    });
    let outs = rx.recv_timeout(std::time::Duration::from_secs(60)).expect("no deadlock within a minute");
    for y in outs {
        assert_eq!(y, one, "every thread count gives the same result");
    }
}
