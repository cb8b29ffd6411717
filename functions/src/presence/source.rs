//! [`PresenceSource`]: where handlers read presence from — a process's
//! [`PresenceView`] ([`LiveSource`]) or the store itself ([`StoreSource`]).

use std::sync::Arc;

use async_trait::async_trait;

use super::view::{Joined, PresenceView};
use crate::domain::{Timestamp, UserPresence, Username};
use crate::store::{Page, Store, StoreResult};

/// Users read per store call when a whole list is needed.
const LIST_PAGE: usize = 5000;

/// Renders the page's list rows, as of a time ("last seen 5 min ago").
pub type RenderRows<'a> = &'a (dyn Fn(&[UserPresence], Timestamp) -> String + Sync);

/// What handlers read about presence.
#[async_trait]
pub trait PresenceSource: Send + Sync + 'static {
    /// Whether snapshots from here reach a client in order with its events
    /// (so the client may take them as the truth; see
    /// [`crate::domain::ServerMessage::Snapshot`]).
    fn ordered(&self) -> bool;

    /// The online users, sorted by name.
    async fn online(&self) -> StoreResult<Vec<UserPresence>>;

    /// Users by name after `after`, at most `limit`.
    async fn users_page(
        &self,
        after: Option<&Username>,
        limit: usize,
    ) -> StoreResult<Page<UserPresence>>;

    /// Up to `limit` users created after `since`, and whether there were more.
    async fn joined_since(
        &self,
        since: Timestamp,
        limit: usize,
    ) -> StoreResult<(Vec<Username>, bool)>;

    /// Every user's row of the page, rendered by `render` as of `now`.
    async fn rows(&self, now: Timestamp, render: RenderRows<'_>) -> StoreResult<Arc<str>>;

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
        limit: usize,
    ) -> StoreResult<Page<UserPresence>> {
        Ok(self.view.users_page(after, limit))
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

    async fn rows(&self, now: Timestamp, render: RenderRows<'_>) -> StoreResult<Arc<str>> {
        Ok(self.view.rows(now, render))
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
        limit: usize,
    ) -> StoreResult<Page<UserPresence>> {
        self.0.list_users(after, limit).await
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

    async fn rows(&self, now: Timestamp, render: RenderRows<'_>) -> StoreResult<Arc<str>> {
        let mut all = Vec::new();
        let mut after: Option<Username> = None;
        loop {
            let page = self.0.list_users(after.as_ref(), LIST_PAGE).await?;
            all.extend(page.items);
            match page.next {
                Some(_) => after = all.last().map(|u| u.username.clone()),
                None => break,
            }
        }
        Ok(Arc::from(render(&all, now)))
    }
}
