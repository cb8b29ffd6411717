//! A socket's outbound queue: bounded, many senders (the hub, the socket's
//! own replies), one receiver (the socket's loop).
//!
//! `tokio::sync::mpsc` would do, but it costs about 1 KiB per channel
//! before anything is queued (cache-padded halves and a first block of 32
//! slots), and every open socket has one: this one is a mutex-guarded
//! `VecDeque` that grows with what is queued, and the receiver's waker
//! (an `AtomicWaker`: one receiver, so no list of waiters), ~100 bytes.
//! The mutex is held for a push or a pop, never across an `.await`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

/// Why [`Sender::try_send`] did not queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrySendError {
    /// The queue holds its capacity.
    Full,
    /// The receiver is gone.
    Closed,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    ready: AtomicWaker,
    senders: AtomicUsize,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    /// The receiver was dropped.
    closed: bool,
}

/// The sending side; cheap to clone.
pub struct Sender<T>(Arc<Shared<T>>);

/// The receiving side.
pub struct Receiver<T>(Arc<Shared<T>>);

/// A queue holding at most `capacity` items.
pub fn channel<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            closed: false,
        }),
        ready: AtomicWaker::new(),
        senders: AtomicUsize::new(1),
        capacity,
    });
    (Sender(shared.clone()), Receiver(shared))
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl<T> Sender<T> {
    /// Queues `item` unless the queue is full or its receiver is gone.
    pub fn try_send(&self, item: T) -> Result<(), TrySendError> {
        let mut state = self.0.lock();
        if state.closed {
            return Err(TrySendError::Closed);
        }
        if state.items.len() >= self.0.capacity {
            return Err(TrySendError::Full);
        }
        state.items.push_back(item);
        drop(state);
        self.0.ready.wake();
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.0.senders.fetch_add(1, Ordering::Relaxed);
        Self(self.0.clone())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        if self.0.senders.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.ready.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting for one; `None` once it is empty and every
    /// sender is gone. Cancel-safe: an item is only taken when returned.
    pub async fn recv(&mut self) -> Option<T> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<T>> {
        if let Some(ready) = self.ready() {
            return Poll::Ready(ready);
        }
        self.0.ready.register(cx.waker());
        // A push between the look above and registering woke nobody:
        // look again now that a push will wake us.
        self.ready().map_or(Poll::Pending, Poll::Ready)
    }

    /// The next item, or `Some(None)` for the end, or `None` to wait.
    fn ready(&self) -> Option<Option<T>> {
        if let Some(item) = self.0.lock().items.pop_front() {
            return Some(Some(item));
        }
        if self.0.senders.load(Ordering::Acquire) == 0 {
            // Every push happened before the last sender left.
            return Some(self.0.lock().items.pop_front());
        }
        None
    }
}

impl<T> Receiver<T> {
    /// The next item if one is queued.
    pub fn try_recv(&mut self) -> Option<T> {
        self.0.lock().items.pop_front()
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.closed = true;
        state.items = VecDeque::new();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn items_come_out_in_order_and_a_full_queue_refuses() {
        let (tx, mut rx) = channel(2);
        tx.try_send(1).unwrap();
        tx.clone().try_send(2).unwrap();
        assert_eq!(tx.try_send(3), Err(TrySendError::Full));
        assert_eq!(rx.recv().await, Some(1));
        tx.try_send(3).unwrap();
        assert_eq!(rx.recv().await, Some(2));
        assert_eq!(rx.recv().await, Some(3));
        drop(rx);
        assert_eq!(tx.try_send(4), Err(TrySendError::Closed));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_send_and_ends_with_the_senders() {
        let (tx, mut rx) = channel(8);
        let waiting = tokio::spawn(async move {
            let first = rx.recv().await;
            let second = rx.recv().await;
            (first, second)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.try_send("hi").unwrap();
        drop(tx);
        assert_eq!(waiting.await.unwrap(), (Some("hi"), None));
    }

    #[tokio::test]
    async fn a_cancelled_recv_loses_nothing() {
        let (tx, mut rx) = channel(8);
        // Woken, then dropped before it could take the item.
        let mut pending = Box::pin(rx.recv());
        assert!(futures_util::poll!(&mut pending).is_pending());
        tx.try_send(7).unwrap();
        drop(pending);
        assert_eq!(rx.recv().await, Some(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_senders_on_other_threads_lose_nothing() {
        let (tx, mut rx) = channel(usize::MAX);
        let senders: Vec<_> = (0..4u64)
            .map(|s| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..10_000u64 {
                        tx.try_send(s * 1_000_000 + i).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut last = [None::<u64>; 4];
        let mut n = 0;
        while let Some(v) = rx.recv().await {
            let (s, i) = ((v / 1_000_000) as usize, v % 1_000_000);
            assert!(last[s].is_none_or(|l| l + 1 == i), "in order per sender");
            last[s] = Some(i);
            n += 1;
        }
        for t in senders {
            t.join().unwrap();
        }
        assert_eq!(n, 40_000);
    }
}
