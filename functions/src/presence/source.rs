//! [`PresenceSource`]: where handlers read presence from — a process's
//! [`PresenceView`] ([`LiveSource`]) or the store itself ([`StoreSource`]).

use std::sync::Arc;

use async_trait::async_trait;

use super::view::{Joined, PresenceView};
use crate::domain::{NamePrefix, Timestamp, UserPresence, Username};
use crate::store::{Page, Store, StoreResult};

/// What the page's first render lists: every online user, the first users
/// by name (the offline ones among them are shown; the page loads the rest
/// a page at a time), where the next page starts, and how many users there
/// are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListHead {
    /// Every online user, by name.
    pub online: Vec<UserPresence>,
    /// The first users by name (online ones included).
    pub first: Vec<UserPresence>,
    /// The last name of `first` when more users follow.
    pub next: Option<String>,
    /// Registered users.
    pub total: u64,
}

/// Renders the page's list rows, as of a time ("last seen 5 min ago").
pub type RenderRows<'a> = &'a (dyn Fn(&ListHead, Timestamp) -> String + Sync);

/// What handlers read about presence.
#[async_trait]
pub trait PresenceSource: Send + Sync + 'static {
    /// Whether snapshots from here reach a client in order with its events
    /// (so the client may take them as the truth; see
    /// [`crate::domain::ServerMessage::Snapshot`]).
    fn ordered(&self) -> bool;

    /// The online users, sorted by name.
    async fn online(&self) -> StoreResult<Vec<UserPresence>>;

    /// Users by name after `after` (starting with `prefix`, if given), at
    /// most `limit`.
    async fn users_page(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        limit: usize,
    ) -> StoreResult<Page<UserPresence>>;

    /// Up to `limit` users created after `since`, and whether there were more.
    async fn joined_since(
        &self,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<(Vec<Username>, bool)>;

    /// The page's rows — every online user and the first `first` users by
    /// name ([`ListHead`]) — rendered by `render` as of `now`.
    async fn rows(
        &self,
        now: Timestamp,
        first: usize,
        render: RenderRows<'_>,
    ) -> StoreResult<Arc<str>>;

    /// How many users are registered, when known without a store read
    /// (a view holds them all); snapshots carry it for the page's count.
    fn known_total(&self) -> Option<u64> {
        None
    }
}

/// A process's view, falling back to the store only for joins older than
/// the view remembers.
pub struct LiveSource {
    /// The view.
    pub view: Arc<PresenceView>,
    /// The store behind it.
    pub store: Arc<dyn Store>,
}

#[async_trait]
impl PresenceSource for LiveSource {
    fn ordered(&self) -> bool {
        true
    }

    async fn online(&self) -> StoreResult<Vec<UserPresence>> {
        Ok(self.view.online())
    }

    async fn users_page(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        limit: usize,
    ) -> StoreResult<Page<UserPresence>> {
        Ok(self.view.users_page(after, prefix, limit))
    }

    async fn joined_since(
        &self,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<(Vec<Username>, bool)> {
        match self.view.joined_since(since, limit) {
            Joined::Known(names, more) => Ok((names, more)),
            Joined::Unknown => {
                StoreSource(self.store.clone())
                    .joined_since(since, limit)
                    .await
            }
        }
    }

    async fn rows(
        &self,
        now: Timestamp,
        first: usize,
        render: RenderRows<'_>,
    ) -> StoreResult<Arc<str>> {
        Ok(self.view.rows(now, first, render))
    }

    fn known_total(&self) -> Option<u64> {
        Some(self.view.stats().users as u64)
    }
}

/// Reads the store by key on every call (a process without a view).
pub struct StoreSource(pub Arc<dyn Store>);

#[async_trait]
impl PresenceSource for StoreSource {
    fn ordered(&self) -> bool {
        false
    }

    async fn online(&self) -> StoreResult<Vec<UserPresence>> {
        Ok(self.0.online_users().await?.users)
    }

    async fn users_page(
        &self,
        after: Option<&Username>,
        prefix: Option<&NamePrefix>,
        limit: usize,
    ) -> StoreResult<Page<UserPresence>> {
        self.0.list_users(after, prefix, limit).await
    }

    async fn joined_since(
        &self,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<(Vec<Username>, bool)> {
        let mut names = self.0.joined_since(since, limit.saturating_add(1)).await?;
        let more = names.len() > limit;
        names.truncate(limit);
        Ok((names, more))
    }

    async fn rows(
        &self,
        now: Timestamp,
        first: usize,
        render: RenderRows<'_>,
    ) -> StoreResult<Arc<str>> {
        // Three reads, whatever the number of users: the online ones, the
        // first page by name, the count.
        let online = self.0.online_users().await?.users;
        let page = self.0.list_users(None, None, first).await?;
        let total = self.0.count_users().await?;
        let head = ListHead {
            online,
            first: page.items,
            next: page.next,
            total,
        };
        Ok(Arc::from(render(&head, now)))
    }
}
