//! All-or-nothing output: each result is written to a temporary file beside its target, and
//! only when every one is complete are they renamed into place. On any failure the temporary
//! files are removed, so a failed command leaves nothing half-written.

use convkit::npy::{write_npy_to, NpyElement};
use convkit::Tensor;
use std::path::{Path, PathBuf};

type Writer = Box<dyn Fn(&std::fs::File) -> std::io::Result<()>>;

#[derive(Default)]
pub struct Outputs {
    items: Vec<(String, PathBuf, Writer)>,
}

impl Outputs {
    pub fn add<T: NpyElement + 'static>(mut self, arg: &str, path: &Path, t: Tensor<T>) -> Self {
        let w: Writer = Box::new(move |f| write_npy_to(f, &t.shape, &t.data));
        self.items.push((arg.to_string(), path.to_path_buf(), w));
        self
    }

    pub fn commit(self) -> Result<(), String> {
        let mut temps: Vec<PathBuf> = Vec::new();
        let cleanup = |temps: &[PathBuf]| temps.iter().for_each(|t| drop(std::fs::remove_file(t)));
        for (arg, path, write) in &self.items {
            let tmp = temp_beside(path);
            let res = std::fs::File::create(&tmp).and_then(|f| {
                temps.push(tmp.clone());
                write(&f)?;
                f.sync_all()
            });
            if let Err(err) = res {
                cleanup(&temps);
                return Err(format!("cannot write {arg} {}: {err}", path.display()));
            }
        }
        for ((arg, path, _), tmp) in self.items.iter().zip(&temps) {
            if let Err(err) = std::fs::rename(tmp, path) {
                cleanup(&temps);
                return Err(format!("cannot write {arg} {}: {err}", path.display()));
            }
        }
        Ok(())
    }
}

fn temp_beside(path: &Path) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.{}.tmp-convkit", std::process::id()))
}
