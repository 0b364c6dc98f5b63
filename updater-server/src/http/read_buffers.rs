//! Read buffers for file bodies, kept for reuse.
//!
//! A download reads its file in pieces of up to 1 MiB. A fresh buffer that
//! size comes from the allocator as new pages (large blocks go back to the
//! kernel when freed), and faulting them in measured as about a sixth of
//! the server's CPU per MiB served (docs/benchmarks.md). A buffer taken
//! here goes back to its pool when the body frame that carries it has been
//! written and dropped, whichever thread drops it.

use std::sync::Mutex;

use axum::body::Bytes;

/// Buffers kept idle per size class at most (the rest are freed): enough
/// for the downloads of a busy moment, a few MiB when idle.
const MAX_IDLE: usize = 16;

/// Buffers of one capacity.
#[derive(Debug)]
pub(crate) struct ReadBuffers {
    capacity: usize,
    idle: Mutex<Vec<Vec<u8>>>,
}

impl ReadBuffers {
    /// A pool of buffers of `capacity` bytes.
    pub(crate) const fn new(capacity: usize) -> Self {
        Self {
            capacity,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The capacity of this pool's buffers.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// An empty buffer of this pool's capacity.
    pub(crate) fn take(&'static self) -> Vec<u8> {
        let idle = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        idle.unwrap_or_else(|| Vec::with_capacity(self.capacity))
    }

    /// `filled` (a buffer from [`Self::take`]) as a body frame that returns
    /// the buffer here when dropped.
    pub(crate) fn frame(&'static self, filled: Vec<u8>) -> Bytes {
        Bytes::from_owner(Returned {
            buf: filled,
            home: self,
        })
    }

    fn give_back(&self, mut buf: Vec<u8>) {
        // A buffer that grew or shrank is not of this class any more.
        if buf.capacity() != self.capacity {
            return;
        }
        buf.clear();
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(buf);
        }
    }

    #[cfg(test)]
    fn idle(&self) -> usize {
        self.idle.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A filled buffer lent to a body frame.
struct Returned {
    buf: Vec<u8>,
    home: &'static ReadBuffers,
}

impl AsRef<[u8]> for Returned {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Returned {
    fn drop(&mut self) {
        self.home.give_back(std::mem::take(&mut self.buf));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frames_buffer_comes_back_when_the_last_handle_is_dropped() {
        static POOL: ReadBuffers = ReadBuffers::new(64);
        let mut buf = POOL.take();
        assert_eq!((buf.len(), buf.capacity()), (0, 64));
        buf.extend_from_slice(b"firmware bytes");
        let frame = POOL.frame(buf);
        let part = frame.slice(0..8);
        assert_eq!(&frame[..], b"firmware bytes");
        drop(frame);
        assert_eq!(POOL.idle(), 0, "a slice still holds it");
        assert_eq!(&part[..], b"firmware");
        drop(part);
        assert_eq!(POOL.idle(), 1);
        let again = POOL.take();
        assert_eq!((again.len(), again.capacity()), (0, 64), "reused, empty");
        assert_eq!(POOL.idle(), 0);
    }

    #[test]
    fn at_most_max_idle_are_kept_and_resized_buffers_are_not() {
        static POOL: ReadBuffers = ReadBuffers::new(16);
        let frames: Vec<Bytes> = (0..MAX_IDLE + 4)
            .map(|_| {
                let mut b = POOL.take();
                b.push(1);
                POOL.frame(b)
            })
            .collect();
        drop(frames);
        assert_eq!(POOL.idle(), MAX_IDLE);
        static OTHER: ReadBuffers = ReadBuffers::new(16);
        let mut grown = OTHER.take();
        grown.extend_from_slice(&[0; 40]);
        drop(OTHER.frame(grown));
        assert_eq!(OTHER.idle(), 0);
    }
}
