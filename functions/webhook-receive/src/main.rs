//! The webhook-receive Lambda. Wiring only: tracing, clients built once, the handler, the runtime.

use lambda_http::{run, service_fn, Error, Request};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::tracing::init_default_subscriber();
    let app = webhook_receive::App::from_env().await?;
    run(service_fn(|req: Request| app.handle(req))).await
}
