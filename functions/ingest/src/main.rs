//! The ingest Lambda. Wiring only: tracing, clients built once, the handler, the runtime.

use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    relay_aws::logging::init();
    let app = ingest::App::from_env().await?;
    run(service_fn(|req: Request| app.handle(req))).await
}
