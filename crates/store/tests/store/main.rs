//! The integration suite of `clawfirst-store`, run against real SQLite files in temporary
//! directories. One module per topic; `throughput` is an ignored measurement.

mod agents;
mod amounts;
mod approvals;
mod approvers;
mod audit;
mod budgets;
mod caps;
mod caps_processes;
mod change_tokens;
mod expiry;
mod group_commit;
mod idempotency;
mod logs;
mod reopen;
mod settlement;
mod support;
mod throughput;
mod transitions;
mod window;
