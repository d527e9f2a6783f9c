//! The one way the doubles take their state.

use std::sync::{Mutex, MutexGuard};

/// A double's state; a test that panicked while holding it leaves it usable for the next.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
