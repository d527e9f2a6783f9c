//! The provision Lambda. Wiring only: tracing, clients built once, the handler, the runtime.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// One thread, as every Relay function (issue 16).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    relay_aws::logging::init();
    let app = provision::App::from_env().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| app.handle(event.payload))).await
}
