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
//! DATA/blobs/purging/                blobs a purge is removing, until its
//!                                    commit; anything left here after a crash
//!                                    is put back at start
//! ```
//!
//! A blob is written to `tmp/`, synced, renamed into place and its folder
//! synced, so a blob whose hash a committed event names is whole on disk.
//! Identical bytes are stored once. Blobs are never changed; a blob no event
//! names (left by a batch whose commit failed, or put back after a crash
//! during a purge) is harmless. The retention purge removes the blobs of
//! the events it deletes once no event names them
//! ([`BlobStore::remove_with`]); ingest writes its blobs again after its
//! commit, so a blob removed by a purge that raced with it is written back.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::model::BlobHash;

/// The blob folder of a data directory.
#[derive(Debug)]
pub struct BlobStore {
    root: PathBuf,
    tmp: PathBuf,
    purging: PathBuf,
    counter: AtomicU64,
}

/// Creates `dir` (and its parents) when missing and makes it readable by
/// its owner only: evidence and the database are nobody else's to read.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

impl BlobStore {
    /// Opens (creating if needed) `dir`, normally `DATA/blobs`.
    /// The folder the blobs live in.
    pub fn dir(&self) -> &Path {
        self.root.parent().unwrap_or(&self.root)
    }

    pub fn open(dir: &Path) -> Result<BlobStore> {
        let root = dir.join("sha256");
        let tmp = dir.join("tmp");
        let purging = dir.join("purging");
        private_dir(dir).map_err(|e| Error::io("cannot create folder", dir, e))?;
        for d in [&root, &tmp, &purging] {
            fs::create_dir_all(d).map_err(|e| Error::io("cannot create folder", d, e))?;
        }
        // Half-written blobs of an earlier run.
        if let Ok(entries) = fs::read_dir(&tmp) {
            for entry in entries.flatten() {
                let _ = fs::remove_file(entry.path());
            }
        }
        let blobs = BlobStore {
            root,
            tmp,
            purging,
            counter: AtomicU64::new(0),
        };
        // Blobs of a purge that stopped before its commit was known: put
        // them back (at worst, a blob no event names stays).
        if let Ok(entries) = fs::read_dir(&blobs.purging) {
            for entry in entries.flatten() {
                let name = entry.file_name();
                let hash = name.to_str().and_then(|n| n.split('.').next());
                match hash.and_then(|h| blobs.path(h)) {
                    Some(path) => blobs.restore(&entry.path(), &path)?,
                    None => {
                        let _ = fs::remove_file(entry.path());
                    }
                }
            }
        }
        Ok(blobs)
    }

    /// Moves a blob set aside by a purge back into place.
    fn restore(&self, aside: &Path, path: &Path) -> Result<()> {
        let dir = path.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir).map_err(|e| Error::io("cannot create folder", dir, e))?;
        fs::rename(aside, path).map_err(|e| Error::io("cannot put back blob", path, e))
    }

    /// Removes the blobs `hashes` together with the commit that stops
    /// naming them: each is moved aside to `purging/`, then `commit` runs;
    /// when it succeeds the moved files are deleted, when it fails they are
    /// moved back and its error is returned. Returns `commit`'s value and
    /// how many files were removed (hashes with no file are skipped).
    pub fn remove_with<T>(
        &self,
        hashes: &[BlobHash],
        commit: impl FnOnce() -> Result<T>,
    ) -> Result<(T, u64)> {
        let mut aside: Vec<(PathBuf, PathBuf)> = Vec::new();
        let mut moved = Ok(());
        for hash in hashes {
            let Some(path) = self.path(hash) else {
                continue;
            };
            let to = self.purging.join(format!(
                "{hash}.{}-{}",
                std::process::id(),
                self.counter.fetch_add(1, Ordering::Relaxed)
            ));
            match fs::rename(&path, &to) {
                Ok(()) => aside.push((to, path)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    moved = Err(Error::io("cannot move aside blob", &path, e));
                    break;
                }
            }
        }
        let committed = moved.and_then(|()| commit());
        match committed {
            Ok(value) => {
                for (to, _) in &aside {
                    if let Err(e) = fs::remove_file(to) {
                        tracing::warn!(path = %to.display(), error = %e, "cannot delete a purged blob");
                    }
                }
                Ok((value, aside.len() as u64))
            }
            Err(e) => {
                for (to, path) in &aside {
                    if let Err(err) = self.restore(to, path) {
                        tracing::error!(error = %err, "cannot put back a blob after a failed purge");
                    }
                }
                Err(e)
            }
        }
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
