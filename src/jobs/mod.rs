//! Background work that every replica runs. Rows are leased in the store, so replicas share
//! the work without doing any piece of it twice.

pub mod dns;
pub mod outbox;
