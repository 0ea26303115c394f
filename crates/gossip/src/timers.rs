//! foca's timer requests, kept until due (pure: the caller supplies the clock).
//!
//! foca asks for each event with `submit_after(event, delay)` and requires every one to be
//! delivered; delivering late is fine. This is a min-heap by deadline, ties in submission order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Add;
use std::time::Duration;

/// Most timers foca holds at once for a handful of members is a few dozen; past this something
/// is wrong and the oldest-due timers still get delivered, new ones are refused.
pub const MAX_PENDING: usize = 65_536;

struct Entry<I, E> {
    at: I,
    seq: u64,
    event: E,
}

impl<I: Ord, E> PartialEq for Entry<I, E> {
    fn eq(&self, other: &Self) -> bool {
        (&self.at, self.seq) == (&other.at, other.seq)
    }
}
impl<I: Ord, E> Eq for Entry<I, E> {}
impl<I: Ord, E> PartialOrd for Entry<I, E> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<I: Ord, E> Ord for Entry<I, E> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (&self.at, self.seq).cmp(&(&other.at, other.seq))
    }
}

/// Pending events by deadline. `I` is the clock's instant type (tokio's in the driver, so tests
/// run on paused time).
pub struct TimerQueue<I, E> {
    heap: BinaryHeap<Reverse<Entry<I, E>>>,
    next_seq: u64,
}

impl<I: Ord + Copy + Add<Duration, Output = I>, E> Default for TimerQueue<I, E> {
    fn default() -> Self {
        Self {
            heap: BinaryHeap::new(),
            next_seq: 0,
        }
    }
}

/// The queue is full ([`MAX_PENDING`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("timer queue full ({pending} pending)")]
pub struct QueueFull {
    /// How many timers are pending.
    pub pending: usize,
}

impl<I: Ord + Copy + Add<Duration, Output = I>, E> TimerQueue<I, E> {
    /// Schedules `event` at `now + after`.
    pub fn push(&mut self, now: I, after: Duration, event: E) -> Result<(), QueueFull> {
        if self.heap.len() >= MAX_PENDING {
            return Err(QueueFull {
                pending: self.heap.len(),
            });
        }
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.heap.push(Reverse(Entry {
            at: now + after,
            seq,
            event,
        }));
        Ok(())
    }

    /// The earliest deadline, if any timer is pending.
    pub fn next_deadline(&self) -> Option<I> {
        self.heap.peek().map(|Reverse(e)| e.at)
    }

    /// Removes and returns the earliest event due at `now`.
    pub fn pop_due(&mut self, now: I) -> Option<E> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(e)| e.event)
    }

    /// How many timers are pending.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no timer is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Test double: a clock instant counted in milliseconds.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    struct FakeInstant(u128);
    impl Add<Duration> for FakeInstant {
        type Output = FakeInstant;
        fn add(self, d: Duration) -> FakeInstant {
            FakeInstant(self.0 + d.as_millis())
        }
    }

    #[test]
    fn events_come_out_by_deadline_then_submission_order_and_not_before_due() {
        let mut q = TimerQueue::default();
        let t0 = FakeInstant(0);
        q.push(t0, Duration::from_millis(30), "c").expect("room");
        q.push(t0, Duration::from_millis(10), "a").expect("room");
        q.push(t0, Duration::from_millis(10), "b").expect("room");
        assert_eq!(q.next_deadline(), Some(FakeInstant(10)));
        assert_eq!(q.pop_due(FakeInstant(9)), None);
        assert_eq!(q.pop_due(FakeInstant(10)), Some("a"));
        assert_eq!(q.pop_due(FakeInstant(10)), Some("b"));
        assert_eq!(q.pop_due(FakeInstant(29)), None);
        assert_eq!(q.pop_due(FakeInstant(100)), Some("c"));
        assert!(q.is_empty());
        assert_eq!(q.pop_due(FakeInstant(1000)), None);
    }

    #[test]
    fn a_full_queue_refuses_new_timers() {
        let mut q = TimerQueue::default();
        for i in 0..MAX_PENDING {
            q.push(FakeInstant(0), Duration::ZERO, i).expect("room");
        }
        assert_eq!(
            q.push(FakeInstant(0), Duration::ZERO, 0),
            Err(QueueFull {
                pending: MAX_PENDING
            })
        );
        assert_eq!(q.len(), MAX_PENDING);
    }
}
