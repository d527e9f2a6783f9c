//! The yardstick for cold start plus a first request (issue 14): the smallest `lambda_runtime`
//! function that does what ingest's first request does on AWS, with the SDK as its defaults
//! build it: look up the caller's key, take a lock, write the event, publish it, complete the
//! lock. Built with the same release profile as Relay's functions, so the difference is Relay.

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let sdk = aws_config::load_from_env().await;
    let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
    let bus = aws_sdk_eventbridge::Client::new(&sdk);
    let (dynamo, bus) = (&dynamo, &bus);
    lambda_runtime::run(service_fn(|e: LambdaEvent<Value>| async move {
        let body = e.payload["body"].as_str().unwrap_or_default().to_string();
        let s = |v: &str| AttributeValue::S(v.to_string());
        dynamo.get_item().table_name("config").key("pk", s("KEY#bench")).key("sk", s("KEY")).send().await?;
        dynamo.put_item().table_name("idempotency").item("id", s("lock")).condition_expression("attribute_not_exists(id)").send().await?;
        dynamo.put_item().table_name("events").item("eventId", s("e-1")).item("envelope", s(&body)).send().await?;
        let entry =
            PutEventsRequestEntry::builder().event_bus_name("bus").source("bench").detail_type("candidate.hired").detail(body).build();
        bus.put_events().entries(entry).send().await?;
        dynamo
            .update_item()
            .table_name("idempotency")
            .key("id", s("lock"))
            .update_expression("SET #s = :c")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":c", s("COMPLETED"))
            .send()
            .await?;
        Ok::<Value, Error>(json!({"statusCode": 202, "body": "{\"eventId\":\"e-1\"}"}))
    }))
    .await
}
