//! The integration suite of `clawfirst-store`, run against real SQLite files in temporary
//! directories. One module per topic.

mod agents;
mod amounts;
mod audit;
mod budgets;
mod expiry;
mod idempotency;
mod logs;
mod reopen;
mod settlement;
mod support;
mod transitions;
mod window;
