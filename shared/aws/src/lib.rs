//! AWS adapters for Relay's ports. Each adapter is a thin translation between a port of
//! `relay-core` and one AWS service; no business rule lives here.
//!
//! - [`config`]: the SDK configuration every function shares (timeouts, endpoint, path-style S3).
//! - [`dynamo`]: every store port on DynamoDB, one file per table (see its module doc for
//!   which items live where).
//! - [`eventbridge`]: the bus publisher.
//! - [`s3`]: the blob store.
//! - [`logging`]: the functions' log lines, as few bytes as say what they must.
//! - [`metrics`]: CloudWatch metrics as Embedded Metric Format log lines.
//! - [`ses`]: mail through SES.
//! - [`sqs`]: the delivery retry queue, the dead-letter queue, payroll chunks and the provision
//!   queue's continuations.
//! - [`ssm`]: secrets from SSM Parameter Store, read at cold start.

pub mod config;
pub mod dynamo;
pub mod eventbridge;
pub mod logging;
pub mod metrics;
pub mod s3;
pub mod ses;
pub mod sqs;
pub mod ssm;
