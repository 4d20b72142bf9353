//! The six agent-facing tools: their schemas and the parsing of their arguments.

pub mod input;
pub mod schema;
