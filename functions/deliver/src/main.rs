//! The deliver Lambda. Wiring only: tracing, clients built once, the handler, the runtime.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    relay_aws::logging::init();
    let app = deliver::App::from_env().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| app.handle(event.payload))).await
}
