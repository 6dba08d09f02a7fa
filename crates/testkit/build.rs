//! Hashes `migrations/` into `BOOKING_MIGRATIONS_HASH`, part of the template
//! database's name (`postgres.rs`): a changed migration gets a new template,
//! and a binary built from other migrations keeps its own.

use std::path::{Path, PathBuf};

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let root = Path::new(&manifest).join("../../migrations");
    // A directory: cargo reruns this script when any file under it changes.
    println!("cargo:rerun-if-changed={}", root.display());

    let mut files = Vec::new();
    collect_files(&root, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no migrations under {}", root.display());

    let mut hash = Fnv1a::default();
    for file in &files {
        let relative = file.strip_prefix(&root).expect("under migrations/");
        hash.write(relative.to_string_lossy().as_bytes());
        hash.write(&[0]);
        hash.write(&std::fs::read(file).expect("a readable migration file"));
        hash.write(&[0]);
    }
    println!("cargo:rustc-env=BOOKING_MIGRATIONS_HASH={:016x}", hash.0);
}

fn collect_files(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            collect_files(&path, files);
        } else {
            files.push(path);
        }
    }
}

/// 64-bit FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
struct Fnv1a(u64);

impl Default for Fnv1a {
    fn default() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }
}

impl Fnv1a {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 ^= u64::from(*byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}
