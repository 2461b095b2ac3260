//! Cursor pagination shared by the lists: `?limit=` (1–100, default 20) and `?cursor=` (the id
//! of the previous page's last item); the answer is `{"data": [...], "next_cursor": ...}`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Select,
};
use shared::FieldError;
pub use shared::api::Page;

pub const DEFAULT_LIMIT: u64 = 20;
pub const MAX_LIMIT: u64 = 100;

/// A validated page request: newest first, strictly before `before` when set.
pub struct PageRequest {
    pub limit: u64,
    pub before: Option<String>,
}

impl PageRequest {
    /// `prefix` is the id type of the listed resource; a cursor must decode to such an id.
    pub fn parse(
        limit: Option<u64>,
        cursor: Option<&str>,
        prefix: &str,
    ) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        // A cursor is the id of the last item of the previous page; one in base64 (as this
        // API gave them before) is still taken.
        let before = match cursor {
            None => None,
            Some(c) if shared::ids::is_valid(prefix, c) => Some(c.to_owned()),
            Some(c) => {
                let id = URL_SAFE_NO_PAD
                    .decode(c)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                    .filter(|id| shared::ids::is_valid(prefix, id));
                if id.is_none() {
                    errors.push(FieldError::new("cursor", "is not a cursor from this list"));
                }
                id
            }
        };
        if errors.is_empty() {
            Ok(PageRequest { limit, before })
        } else {
            Err(errors)
        }
    }

    /// Runs `select` for this page: ids before the cursor, newest first, one row more than the
    /// limit (to know whether there is a next page).
    pub async fn fetch<E, C>(
        &self,
        select: Select<E>,
        id: E::Column,
        db: &C,
    ) -> Result<Vec<E::Model>, DbErr>
    where
        E: EntityTrait,
        C: ConnectionTrait,
    {
        let select = match &self.before {
            Some(before) => select.filter(id.lt(before.as_str())),
            None => select,
        };
        select.order_by_desc(id).limit(self.limit + 1).all(db).await
    }

    /// Builds the page from up to `limit + 1` rows fetched newest first.
    pub fn page<R, T>(
        &self,
        mut rows: Vec<R>,
        id: impl Fn(&R) -> &str,
        out: impl FnMut(R) -> T,
    ) -> Page<T> {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(self.limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| id(r).to_owned())
        } else {
            None
        };
        Page {
            data: rows.into_iter().map(out).collect(),
            next_cursor,
        }
    }
}
