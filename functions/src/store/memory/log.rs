//! The memory store's event log: a bounded queue of entries numbered from 1,
//! and a wake-up for readers waiting at its end.

use std::collections::VecDeque;

use crate::domain::LogEvent;
use crate::store::{LogCursor, LogRead};

/// The log of one [`super::MemoryStore`].
pub(super) struct Log {
    /// Distinguishes this store's cursors from another store's.
    instance: u64,
    /// The retained entries; `entries[0]` is entry number `first`.
    entries: VecDeque<LogEvent>,
    first: u64,
    /// Entries kept at most; older ones are dropped (a reader that far
    /// behind gets [`LogRead::Gap`]).
    capacity: usize,
}

impl Log {
    pub(super) fn new(capacity: usize) -> Self {
        Self {
            instance: crate::security::random::u64(),
            entries: VecDeque::new(),
            first: 1,
            capacity: capacity.max(1),
        }
    }

    /// Number of the last entry appended (0: none yet).
    fn last(&self) -> u64 {
        self.first + self.entries.len() as u64 - 1
    }

    pub(super) fn append(&mut self, event: LogEvent) {
        self.entries.push_back(event);
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
            self.first += 1;
        }
    }

    /// The cursor after the last entry.
    pub(super) fn end(&self) -> LogCursor {
        self.cursor(self.last())
    }

    fn cursor(&self, n: u64) -> LogCursor {
        LogCursor(format!("{}:{n}", self.instance))
    }

    /// Up to `max` entries after `after`, `None` if there are none yet.
    pub(super) fn read(&self, after: &LogCursor, max: usize) -> Option<LogRead> {
        let Some(n) = self.position(after) else {
            return Some(LogRead::Gap);
        };
        if n > self.last() {
            return Some(LogRead::Gap); // a cursor from the future: we rewound
        }
        if n + 1 < self.first {
            return Some(LogRead::Gap); // trimmed past the reader
        }
        if n == self.last() {
            return None;
        }
        let from = usize::try_from(n + 1 - self.first).unwrap_or(usize::MAX);
        let events: Vec<LogEvent> = self.entries.iter().skip(from).take(max).cloned().collect();
        let cursor = self.cursor(n + events.len() as u64);
        Some(LogRead::Entries { events, cursor })
    }

    /// The entry number a cursor of this log names.
    fn position(&self, cursor: &LogCursor) -> Option<u64> {
        let (instance, n) = cursor.0.split_once(':')?;
        (instance.parse::<u64>().ok()? == self.instance)
            .then(|| n.parse().ok())
            .flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PresenceEvent, Username};

    fn ev(seq: u64) -> LogEvent {
        LogEvent::Presence(PresenceEvent::transition(
            Username::parse("a").unwrap(),
            seq,
            None,
        ))
    }

    #[test]
    fn readers_resume_and_a_reader_trimmed_past_gets_a_gap() {
        let mut log = Log::new(3);
        let start = log.end();
        assert_eq!(log.read(&start, 10), None);
        log.append(ev(1));
        log.append(ev(2));
        let Some(LogRead::Entries { events, cursor }) = log.read(&start, 1) else {
            panic!("entries")
        };
        assert_eq!(events, vec![ev(1)]);
        let Some(LogRead::Entries { events, cursor }) = log.read(&cursor, 10) else {
            panic!("entries")
        };
        assert_eq!(events, vec![ev(2)]);
        log.append(ev(3));
        log.append(ev(4));
        let Some(LogRead::Entries { events, cursor }) = log.read(&cursor, 10) else {
            panic!("entries")
        };
        assert_eq!(events, vec![ev(3), ev(4)]);
        for s in 5..=7 {
            log.append(ev(s));
        }
        assert_eq!(
            log.read(&start, 10),
            Some(LogRead::Gap),
            "entry 1 was dropped"
        );
        let Some(LogRead::Entries { events, .. }) = log.read(&cursor, 10) else {
            panic!("entries")
        };
        assert_eq!(events, vec![ev(5), ev(6), ev(7)]);
        assert_eq!(
            log.read(&LogCursor("junk".into()), 1),
            Some(LogRead::Gap),
            "a foreign cursor"
        );
        assert_eq!(Log::new(3).read(&cursor, 1), Some(LogRead::Gap));
    }
}
