//! All-or-nothing output. Each result is written to a temporary file beside its target; only
//! when every one is complete are they moved into place, existing targets being set aside
//! first so that a failure part-way restores them. A failed command leaves nothing
//! half-written and no temporary files.

use convkit::npy::{write_npy_to, NpyElement};
use convkit::Tensor;
use std::io::Write;
use std::path::{Path, PathBuf};

type Writer = Box<dyn Fn(&std::fs::File) -> std::io::Result<()>>;

/// Outputs to write together.
#[derive(Default)]
pub struct Outputs {
    items: Vec<(String, PathBuf, Writer)>,
}

impl Outputs {
    /// A tensor written as `.npy` to `path`; `arg` names the option in error messages.
    pub fn add<T: NpyElement + 'static>(mut self, arg: &str, path: &Path, t: Tensor<T>) -> Self {
        let w: Writer = Box::new(move |f| write_npy_to(f, &t.shape, &t.data));
        self.items.push((arg.to_string(), path.to_path_buf(), w));
        self
    }

    /// Ready-made bytes (an encoded image, say) written to `path`.
    pub fn add_bytes(&mut self, arg: &str, path: PathBuf, bytes: Vec<u8>) {
        let w: Writer = Box::new(move |mut f| f.write_all(&bytes));
        self.items.push((arg.to_string(), path, w));
    }

    /// Ready-made bytes in two parts (a header and a body, say) written one after the other
    /// to `path`, without joining them first.
    pub fn add_parts(&mut self, arg: &str, path: PathBuf, head: Vec<u8>, body: Vec<u8>) {
        let w: Writer = Box::new(move |mut f| {
            f.write_all(&head)?;
            f.write_all(&body)
        });
        self.items.push((arg.to_string(), path, w));
    }

    /// Write everything, or nothing.
    pub fn commit(self) -> Result<(), String> {
        let fail =
            |arg: &str, path: &Path, why: String| format!("cannot write {arg} {}: {why}", path.display());
        // Refuse what is bound to fail before touching the disk.
        for (i, (arg, path, _)) in self.items.iter().enumerate() {
            if path.is_dir() {
                return Err(fail(arg, path, "is a directory".into()));
            }
            let same = |p: &Path| {
                p == path || (p.canonicalize().ok()).is_some_and(|c| path.canonicalize().ok() == Some(c))
            };
            if let Some((other, _, _)) = self.items[..i].iter().find(|(_, p, _)| same(p)) {
                return Err(fail(arg, path, format!("is also the {other} file")));
            }
        }
        let mut temps: Vec<PathBuf> = Vec::new();
        let remove = |files: &[PathBuf]| files.iter().for_each(|t| drop(std::fs::remove_file(t)));
        for (i, (arg, path, write)) in self.items.iter().enumerate() {
            let tmp = beside(path, i, "tmp");
            let res = std::fs::File::create(&tmp).and_then(|f| {
                temps.push(tmp.clone());
                write(&f)?;
                f.sync_all()
            });
            if let Err(err) = res {
                remove(&temps);
                return Err(fail(arg, path, err.to_string()));
            }
        }
        // Move into place; set existing targets aside so a failure can put them back.
        let mut done: Vec<(usize, Option<PathBuf>)> = Vec::new();
        for (i, ((arg, path, _), tmp)) in self.items.iter().zip(&temps).enumerate() {
            let backup = path.exists().then(|| beside(path, i, "old"));
            let res = match &backup {
                Some(b) => std::fs::rename(path, b).and_then(|()| {
                    std::fs::rename(tmp, path).inspect_err(|_| drop(std::fs::rename(b, path)))
                }),
                None => std::fs::rename(tmp, path),
            };
            if let Err(err) = res {
                for (j, backup) in done.iter().rev() {
                    let target = &self.items[*j].1;
                    drop(std::fs::remove_file(target));
                    if let Some(b) = backup {
                        drop(std::fs::rename(b, target));
                    }
                }
                remove(&temps[i..]);
                return Err(fail(arg, path, err.to_string()));
            }
            done.push((i, backup));
        }
        for (_, backup) in done {
            if let Some(b) = backup {
                drop(std::fs::remove_file(b));
            }
        }
        Ok(())
    }
}

fn beside(path: &Path, index: usize, what: &str) -> PathBuf {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    path.with_file_name(format!(".{name}.{}.{index}.{what}-convkit", std::process::id()))
}
