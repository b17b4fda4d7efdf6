//! Content-addressed files for snapshots and clips.
//!
//! # Layout
//!
//! ```text
//! DATA/blobs/sha256/ab/cdef0123...   one file per distinct content; the path is
//!                                    the lower-case hex SHA-256 of the bytes,
//!                                    split after two characters
//! DATA/blobs/tmp/                    files being written; anything left here
//!                                    after a crash is removed at start
//! ```
//!
//! A blob is written to `tmp/`, synced, renamed into place and its folder
//! synced, so a blob whose hash a committed event names is whole on disk.
//! Identical bytes are stored once. Blobs are never changed; a blob no event
//! names (left by a batch whose commit failed) is harmless.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Lower-case hex SHA-256 of a blob: its name.
pub type BlobHash = String;

/// The blob folder of a data directory.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl BlobStore {
    /// Opens (creating if needed) `dir`, normally `DATA/blobs`.
    pub fn open(dir: &Path) -> Result<BlobStore> {
        let root = dir.join("sha256");
        let tmp = dir.join("tmp");
        for d in [&root, &tmp] {
            fs::create_dir_all(d).map_err(|e| Error::io("cannot create folder", d, e))?;
        }
        // Half-written blobs of an earlier run.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(BlobStore {
            root,
            tmp,
            counter: AtomicU64::new(0),
        })
    }

    /// The hash of `bytes`.
    pub fn hash(bytes: &[u8]) -> BlobHash {
        let digest = Sha256::digest(bytes);
        let mut hex = String::with_capacity(64);
        for b in digest {
            hex.push_str(&format!("{b:02x}"));
        }
        hex
    }

    /// Where the blob `hash` lives; `None` when `hash` is not a SHA-256 in
    /// lower-case hex (so a stored value can never point outside the store).
    pub fn path(&self, hash: &str) -> Option<PathBuf> {
        let valid = hash.len() == 64
            && hash
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        valid.then(|| self.root.join(&hash[..2]).join(&hash[2..]))
    }

    /// Stores `bytes` durably and returns their hash.
    pub fn put(&self, bytes: &[u8]) -> Result<BlobHash> {
        let hash = Self::hash(bytes);
        let path = self.path(&hash).expect("a computed hash is valid");
        if path.exists() {
            return Ok(hash);
        }
        let dir = path.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create folder", dir, e))?;
        let tmp = self.tmp.join(format!(
            "{}-{}-{}",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed),
            &hash[..16]
        ));
        let write = || -> std::io::Result<()> {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            f.sync_all()
        };
        if let Err(e) = write() {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io("cannot write blob", &tmp, e));
        }
        fs::rename(&tmp, &path).map_err(|e| Error::io("cannot move blob into", &path, e))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| Error::io("cannot sync folder", dir, e))?;
        Ok(hash)
    }

    /// Reads a blob; `None` when there is none of that hash.
    pub fn get(&self, hash: &str) -> Result<Option<Vec<u8>>> {
        let Some(path) = self.path(hash) else {
            return Ok(None);
        };
        match fs::read(&path) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("cannot read blob", path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_bytes_are_stored_once_under_their_hash() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let a = blobs.put(b"hello").unwrap();
        assert_eq!(
            a,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(blobs.put(b"hello").unwrap(), a);
        let path = dir.path().join("sha256/2c").join(&a[2..]);
        assert_eq!(fs::read(path).unwrap(), b"hello");
        assert_eq!(blobs.get(&a).unwrap().unwrap(), b"hello");
        assert_eq!(blobs.get(&"0".repeat(64)).unwrap(), None);
        assert_eq!(blobs.get("../../etc/passwd").unwrap(), None);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
