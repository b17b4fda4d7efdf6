//! The one policy for poisoned locks: carry on with what the lock holds.
//!
//! A lock is poisoned when a thread panicked while holding it. Everything
//! kept behind a lock here is whole between the statements that can panic
//! (an index, a queue, a connection, the spool's in-memory view of files
//! it has already synced), and what was accepted is on disk either way, so
//! the other threads go on instead of each failing in turn; the panic
//! itself is logged where it happened. This is what `parking_lot`'s locks,
//! which have no poisoning, do.

use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// [`Mutex::lock`] under this policy.
pub trait Locked<T: ?Sized> {
    /// The guard, poisoned or not.
    fn locked(&self) -> MutexGuard<'_, T>;
}

impl<T: ?Sized> Locked<T> for Mutex<T> {
    fn locked(&self) -> MutexGuard<'_, T> {
        self.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`RwLock::read`] and [`RwLock::write`] under this policy.
pub trait ReadWriteLocked<T: ?Sized> {
    /// A read guard, poisoned or not.
    fn read_locked(&self) -> RwLockReadGuard<'_, T>;
    /// A write guard, poisoned or not.
    fn write_locked(&self) -> RwLockWriteGuard<'_, T>;
}

impl<T: ?Sized> ReadWriteLocked<T> for RwLock<T> {
    fn read_locked(&self) -> RwLockReadGuard<'_, T> {
        self.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_locked(&self) -> RwLockWriteGuard<'_, T> {
        self.write().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_poisoned_by_a_panic_still_gives_its_value() {
        let m = std::sync::Arc::new(Mutex::new(vec![1]));
        let rw = std::sync::Arc::new(RwLock::new(7));
        let (m2, rw2) = (m.clone(), rw.clone());
        let _ = std::thread::spawn(move || {
            let _g = m2.lock().unwrap();
            let _w = rw2.write().unwrap();
            panic!("holder dies");
        })
        .join();
        assert!(m.is_poisoned() && rw.is_poisoned());
        m.locked().push(2);
        assert_eq!(*m.locked(), [1, 2]);
        *rw.write_locked() += 1;
        assert_eq!(*rw.read_locked(), 8);
    }
}
