//! AWS adapters for Relay's ports. Each adapter is a thin translation between a port of
//! `relay-core` and one AWS service; no business rule lives here.
//!
//! - [`config`]: the SDK configuration every function shares (timeouts, endpoint, path-style S3).
//! - [`dynamo`]: keys, idempotency records and the event store on DynamoDB.
//! - [`eventbridge`]: the bus publisher.
//! - [`s3`]: the blob store.
//! - [`metrics`]: CloudWatch metrics as Embedded Metric Format log lines.
//! - [`ses`], [`sqs`]: the organisation e-mail notifier and the delivery retry queue.

pub mod config;
pub mod dynamo;
pub mod eventbridge;
pub mod metrics;
pub mod s3;
pub mod ses;
pub mod sqs;
