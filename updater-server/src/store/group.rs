//! Group commit: batches committed by concurrent callers share one
//! transaction (and so one fsync). Each caller's batch stays atomic on its
//! own (the writer checks and applies it whole, or not at all), and each
//! caller returns only after the transaction holding its batch is durable.
//!
//! No timer gathers a group: one caller (the leader) writes whatever is
//! queued while the others wait; batches that arrive during that write form
//! the next group. After its own group the leader hands the lead to the
//! oldest waiting caller, so under constant load no caller keeps writing
//! other callers' groups forever.

use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Mutex, MutexGuard};

use super::{Op, StoreError};

/// The queue of batches waiting for a transaction.
#[derive(Debug, Default)]
pub(crate) struct GroupCommit {
    queue: Mutex<Queue>,
}

#[derive(Debug, Default)]
struct Queue {
    waiting: Vec<Waiter>,
    /// A caller is writing a group (or has been told to).
    leading: bool,
}

#[derive(Debug)]
struct Waiter {
    ops: Vec<Op>,
    reply: SyncSender<Reply>,
}

#[derive(Debug)]
enum Reply {
    /// The batch's transaction ended: committed (`Ok`), or this batch or
    /// the transaction failed.
    Done(Result<(), StoreError>),
    /// Write the queued batches (this caller's among them).
    Lead,
}

impl GroupCommit {
    /// Commits `ops` in a group with whatever other callers commit at the
    /// same time. `write` gets the group's batches in arrival order and
    /// returns one result per batch, in the same order, only once the
    /// transaction holding them is durable (or failed).
    pub(crate) fn commit(
        &self,
        ops: Vec<Op>,
        write: impl Fn(Vec<Vec<Op>>) -> Vec<Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = sync_channel(1);
        let lead = {
            let mut q = self.lock();
            q.waiting.push(Waiter { ops, reply });
            !std::mem::replace(&mut q.leading, true)
        };
        if !lead {
            match wait(&answer) {
                Reply::Done(result) => return result,
                Reply::Lead => {}
            }
        }
        // Passes the lead on even if `write` panics (the replies it holds
        // are dropped then, and their callers get an error, not a hang).
        let _pass_on = PassLead(self);
        let group = std::mem::take(&mut self.lock().waiting);
        let (batches, replies): (Vec<Vec<Op>>, Vec<SyncSender<Reply>>) =
            group.into_iter().map(|w| (w.ops, w.reply)).unzip();
        let count = batches.len();
        let mut results = write(batches);
        // A writer that loses a result must not leave a caller waiting.
        results.resize_with(count, || {
            Err(StoreError::Backend(
                "group commit: the writer returned no result for this batch".into(),
            ))
        });
        for (reply, result) in replies.into_iter().zip(results) {
            // A sync_channel(1) holds this one message; the caller may be
            // gone only if its thread died, and then nobody needs it.
            let _ = reply.send(Reply::Done(result));
        }
        drop(_pass_on);
        match wait(&answer) {
            Reply::Done(result) => result,
            Reply::Lead => unreachable!("the lead goes only to a batch not yet written"),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue holds no invariant a panicking holder can break halfway.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many batches wait for a transaction (for tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }
}

/// On drop, hands the lead to the oldest waiting batch's caller, or ends
/// it when none waits.
struct PassLead<'a>(&'a GroupCommit);

impl Drop for PassLead<'_> {
    fn drop(&mut self) {
        let mut q = self.0.lock();
        match q.waiting.first() {
            Some(next) => {
                let _ = next.reply.send(Reply::Lead);
            }
            None => q.leading = false,
        }
    }
}

fn wait(answer: &Receiver<Reply>) -> Reply {
    // The sender lives in the queue or with the leader until it replies.
    answer.recv().unwrap_or_else(|_| {
        Reply::Done(Err(StoreError::Backend(
            "group commit: the writing thread died".into(),
        )))
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::store::{Key, Table};

    fn batch(id: &str) -> Vec<Op> {
        vec![Op::Delete(Table::Settings, Key::new("t", id))]
    }

    fn id_of(ops: &[Op]) -> String {
        ops[0].target().1.id.clone()
    }

    #[test]
    fn batches_that_arrive_during_a_write_share_the_next_transaction() {
        let gc = Arc::new(GroupCommit::default());
        let groups: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let (release_first, first_released) = std::sync::mpsc::channel::<()>();
        let first_released = Mutex::new(first_released);
        let writer = {
            let groups = groups.clone();
            move |batches: Vec<Vec<Op>>| {
                let ids: Vec<String> = batches.iter().map(|b| id_of(b)).collect();
                if ids == ["first"] {
                    // Hold the first transaction until the others queued.
                    first_released.lock().unwrap().recv().unwrap();
                }
                groups.lock().unwrap().push(ids.clone());
                // Batch "bad-…" fails on its own; the others commit.
                ids.iter()
                    .map(|id| match id.starts_with("bad") {
                        true => Err(StoreError::Conflict {
                            table: "settings",
                            key: Key::new("t", id),
                        }),
                        false => Ok(()),
                    })
                    .collect::<Vec<_>>()
            }
        };
        let writer = Arc::new(writer);
        std::thread::scope(|s| {
            let first = {
                let (gc, w) = (gc.clone(), writer.clone());
                s.spawn(move || gc.commit(batch("first"), |b| w(b)))
            };
            // The first caller leads and took its group: it is inside its write.
            while !(gc.lock().leading && gc.waiting() == 0) {
                std::thread::yield_now();
            }
            let mut later = Vec::new();
            for i in 0..8 {
                let (gc, w) = (gc.clone(), writer.clone());
                let id = if i == 3 {
                    "bad-3".to_owned()
                } else {
                    format!("b{i}")
                };
                later.push((id.clone(), s.spawn(move || gc.commit(batch(&id), |b| w(b)))));
            }
            while gc.waiting() < 8 {
                std::thread::yield_now();
            }
            release_first.send(()).unwrap();
            assert!(first.join().unwrap().is_ok());
            for (id, h) in later {
                let result = h.join().unwrap();
                match id.as_str() {
                    "bad-3" => assert!(
                        matches!(result, Err(StoreError::Conflict { .. })),
                        "{result:?}"
                    ),
                    _ => assert!(result.is_ok(), "{id}: {result:?}"),
                }
            }
        });
        let groups = groups.lock().unwrap();
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[0], ["first"]);
        let mut second = groups[1].clone();
        second.sort();
        assert_eq!(second, ["b0", "b1", "b2", "b4", "b5", "b6", "b7", "bad-3"]);
        assert_eq!(gc.waiting(), 0);
        assert!(!gc.lock().leading);
    }

    #[test]
    fn a_writer_that_panics_fails_its_group_and_the_next_commit_still_runs() {
        let gc = GroupCommit::default();
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            gc.commit(batch("x"), |_| panic!("writer bug"))
        }));
        assert!(crashed.is_err());
        assert!(!gc.lock().leading, "the lead was given up");
        let result = gc.commit(batch("y"), |b| b.iter().map(|_| Ok(())).collect());
        assert!(result.is_ok(), "{result:?}");
    }

    #[test]
    fn a_writer_that_drops_a_result_fails_that_batch_instead_of_hanging() {
        let gc = GroupCommit::default();
        let result = gc.commit(batch("x"), |_| Vec::new());
        assert!(matches!(result, Err(StoreError::Backend(_))), "{result:?}");
        assert!(!gc.lock().leading);
    }
}
