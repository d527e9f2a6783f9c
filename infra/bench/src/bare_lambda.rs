//! The yardstick for cold start: the smallest `lambda_runtime` function, built with the same
//! release profile as Relay's functions.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| async move { Ok::<Value, Error>(e.payload) })).await
}
