//! The deliver Lambda. Wiring only: tracing, clients built once, the handler, the runtime.

use aws_lambda_events::sqs::SqsEvent;
use lambda_runtime::{run, service_fn, Error, LambdaEvent};

// One thread: a Lambda instance handles one invocation at a time and gets a fraction of a vCPU
// (a seventh at 256 MB). A multi-threaded runtime spent about a third of the CPU of every
// event on waking and parking its worker threads (issue 16, measured with perf).
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    relay_aws::logging::init();
    let app = deliver::App::from_env().await?;
    run(service_fn(|event: LambdaEvent<SqsEvent>| app.handle(event.payload))).await
}
