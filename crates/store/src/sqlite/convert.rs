//! Conversions between Rust values and SQLite columns.
//!
//! Unsigned values are stored as signed 64-bit integers after `i64::try_from`: a value above
//! `i64::MAX` is refused with [`StoreError::OutOfRange`], never wrapped. A negative or
//! malformed value read back is reported as [`StoreError::Corrupt`].

use std::str::FromStr;

use rusqlite::Row;
use rusqlite::types::FromSql;

use super::Result;
use crate::error::StoreError;

/// Converts an unsigned value for storage.
pub(super) fn to_i64(field: &'static str, value: u64) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange { field, value })
}

/// Converts an optional unsigned value for storage.
pub(super) fn opt_to_i64(
    field: &'static str,
    value: Option<u64>,
) -> Result<Option<i64>, StoreError> {
    value.map(|v| to_i64(field, v)).transpose()
}

/// Converts a count or limit for SQL, capping it at `i64::MAX`.
pub(super) fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The current time as stored.
pub(super) fn now_i64() -> i64 {
    i64::try_from(clawfirst_core::now_ms()).unwrap_or(i64::MAX)
}

/// Reads columns of one row of one table, reporting bad values as corruption of that table.
pub(super) struct Columns<'r, 's> {
    pub(super) row: &'r Row<'s>,
    pub(super) table: &'static str,
}

impl Columns<'_, '_> {
    fn corrupt(&self, column: &'static str) -> StoreError {
        StoreError::Corrupt {
            table: self.table,
            column,
        }
    }

    /// A column of a type rusqlite reads directly; a type mismatch is corruption.
    pub(super) fn raw<T: FromSql>(&self, column: &'static str) -> Result<T> {
        self.row.get(column).map_err(|e| match e {
            rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::FromSqlConversionFailure(..) => self.corrupt(column).into(),
            other => other.into(),
        })
    }

    /// A non-negative integer.
    pub(super) fn u64(&self, column: &'static str) -> Result<u64> {
        let value: i64 = self.raw(column)?;
        u64::try_from(value).map_err(|_| self.corrupt(column).into())
    }

    /// A nullable non-negative integer.
    pub(super) fn opt_u64(&self, column: &'static str) -> Result<Option<u64>> {
        let value: Option<i64> = self.raw(column)?;
        value
            .map(|v| u64::try_from(v).map_err(|_| self.corrupt(column).into()))
            .transpose()
    }

    /// A text column parsed with `FromStr` (ids, addresses, state names).
    pub(super) fn parsed<T: FromStr>(&self, column: &'static str) -> Result<T> {
        let text: String = self.raw(column)?;
        text.parse().map_err(|_| self.corrupt(column).into())
    }

    /// A nullable text column parsed with `FromStr`.
    pub(super) fn opt_parsed<T: FromStr>(&self, column: &'static str) -> Result<Option<T>> {
        let text: Option<String> = self.raw(column)?;
        text.map(|t| t.parse().map_err(|_| self.corrupt(column).into()))
            .transpose()
    }

    /// A fixed-size blob.
    pub(super) fn bytes<const N: usize>(&self, column: &'static str) -> Result<[u8; N]> {
        let blob: Vec<u8> = self.raw(column)?;
        <[u8; N]>::try_from(blob.as_slice()).map_err(|_| self.corrupt(column).into())
    }

    /// A nullable fixed-size blob.
    pub(super) fn opt_bytes<const N: usize>(
        &self,
        column: &'static str,
    ) -> Result<Option<[u8; N]>> {
        let blob: Option<Vec<u8>> = self.raw(column)?;
        blob.map(|b| <[u8; N]>::try_from(b.as_slice()).map_err(|_| self.corrupt(column).into()))
            .transpose()
    }

    /// A JSON column.
    pub(super) fn json<T: serde::de::DeserializeOwned>(&self, column: &'static str) -> Result<T> {
        let text: String = self.raw(column)?;
        serde_json::from_str(&text).map_err(|_| self.corrupt(column).into())
    }

    /// A nullable JSON column.
    pub(super) fn opt_json<T: serde::de::DeserializeOwned>(
        &self,
        column: &'static str,
    ) -> Result<Option<T>> {
        let text: Option<String> = self.raw(column)?;
        text.map(|t| serde_json::from_str(&t).map_err(|_| self.corrupt(column).into()))
            .transpose()
    }
}

/// Serializes a JSON value for a TEXT column.
pub(super) fn json_text(field: &'static str, value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| {
        StoreError::Database {
            operation: field,
            source: Box::new(e),
        }
        .into()
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn every_u64_is_stored_exactly_or_refused(value in any::<u64>()) {
            match to_i64("amount", value) {
                Ok(stored) => prop_assert_eq!(u64::try_from(stored).ok(), Some(value)),
                Err(StoreError::OutOfRange { field, value: refused }) => {
                    prop_assert!(value > i64::MAX as u64);
                    prop_assert_eq!(field, "amount");
                    prop_assert_eq!(refused, value);
                }
                Err(other) => prop_assert!(false, "unexpected {other}"),
            }
        }
    }

    #[test]
    fn the_boundary_is_exactly_i64_max() {
        assert!(matches!(to_i64("amount", i64::MAX as u64), Ok(i64::MAX)));
        assert!(to_i64("amount", i64::MAX as u64 + 1).is_err());
        assert!(to_i64("amount", u64::MAX).is_err());
    }
}
