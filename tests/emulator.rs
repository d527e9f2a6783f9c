//! The local stack's emulator holds load: its time per request does not grow with its state
//! (issue 16). moto's own `TransactWriteItems` deep-copies every table it touches before each
//! transaction; `infra/moto_server.py` saves only the items a transaction names, and makes each
//! conditional write one step, as DynamoDB's is. These tests run against the emulator as the
//! local stack starts it.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put, PutRequest, ScalarAttributeType, TransactWriteItem,
    Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use relay_e2e::{Stack, StackOptions};

const TABLE: &str = "emulator-load";

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

async fn table(db: &Client) {
    db.create_table()
        .table_name(TABLE)
        .billing_mode(BillingMode::PayPerRequest)
        .key_schema(KeySchemaElement::builder().attribute_name("pk").key_type(KeyType::Hash).build().expect("key"))
        .attribute_definitions(
            AttributeDefinition::builder().attribute_name("pk").attribute_type(ScalarAttributeType::S).build().expect("attr"),
        )
        .send()
        .await
        .expect("create table");
}

fn put(pk: &str, condition: Option<&str>) -> TransactWriteItem {
    let item = [("pk".to_string(), s(pk)), ("body".to_string(), s(&"x".repeat(400)))].into_iter().collect();
    let put =
        Put::builder().table_name(TABLE).set_item(Some(item)).set_condition_expression(condition.map(str::to_string)).build().expect("put");
    TransactWriteItem::builder().put(put).build()
}

/// Wall time of `n` two-item transactions, each writing new items.
async fn transactions(db: &Client, from: usize, n: usize) -> Duration {
    let started = Instant::now();
    for i in from..from + n {
        db.transact_write_items()
            .transact_items(put(&format!("tx-{i}-a"), None))
            .transact_items(put(&format!("tx-{i}-b"), Some("attribute_not_exists(pk)")))
            .send()
            .await
            .expect("transaction");
    }
    started.elapsed()
}

async fn fill(db: &Client, items: usize) {
    for chunk in 0..items / 25 {
        let requests: Vec<WriteRequest> = (0..25)
            .map(|i| {
                let item =
                    [("pk".to_string(), s(&format!("fill-{chunk}-{i}"))), ("body".to_string(), s(&"y".repeat(400)))].into_iter().collect();
                WriteRequest::builder().put_request(PutRequest::builder().set_item(Some(item)).build().expect("put request")).build()
            })
            .collect();
        let out = db.batch_write_item().request_items(TABLE, requests).send().await.expect("batch write");
        assert!(out.unprocessed_items.unwrap_or_default().is_empty(), "the emulator left items unprocessed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_costs_the_same_on_a_full_table_as_on_an_empty_one() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..Default::default() }).await;
    let db = Client::new(&stack.aws().await);
    table(&db).await;
    transactions(&db, 0, 20).await; // warm: connections, the emulator's first-use imports
    let empty = transactions(&db, 100, 100).await;
    fill(&db, 5000).await;
    let full = transactions(&db, 200, 100).await;
    // Unpatched, each transaction deep-copies the table: 5,000 items made it 21 times
    // slower. A ratio, not a time, so a slow machine passes and a regression does not.
    let ratio = full.as_secs_f64() / empty.as_secs_f64();
    assert!(ratio < 3.0, "100 transactions took {empty:?} on an empty table and {full:?} beside 5,000 items ({ratio:.1}x)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conditional_writes_at_once_check_and_write_as_one_step() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..Default::default() }).await;
    let db = Client::new(&stack.aws().await);
    table(&db).await;
    db.put_item().table_name(TABLE).item("pk", s("counter")).item("n", AttributeValue::N("0".into())).send().await.expect("put");
    // Two hundred writers at once, each adding itself to a set while the count is below fifty
    // (a VPS's slots): fifty may pass, never more. The race is a matter of timing: without the
    // lock it shows on a busy machine, not on every run.
    let writes = (0..200).map(|i| {
        let db = db.clone();
        tokio::spawn(async move {
            db.update_item()
                .table_name(TABLE)
                .key("pk", s("counter"))
                .update_expression("ADD n :one, members :me")
                .condition_expression("n < :max AND (attribute_not_exists(members) OR NOT contains(members, :who))")
                .expression_attribute_values(":one", AttributeValue::N("1".into()))
                .expression_attribute_values(":max", AttributeValue::N("50".into()))
                .expression_attribute_values(":me", AttributeValue::Ss(vec![format!("w{i}")]))
                .expression_attribute_values(":who", s(&format!("w{i}")))
                .send()
                .await
                .is_ok()
        })
    });
    let passed = futures::future::join_all(writes).await.into_iter().filter(|r| *r.as_ref().expect("task")).count();
    let item = db.get_item().table_name(TABLE).key("pk", s("counter")).send().await.expect("get").item.expect("item");
    let members = item["members"].as_ss().expect("members").len();
    assert_eq!((passed, item["n"].as_n().expect("n").as_str(), members), (50, "50", 50), "each condition checked and written as one step");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_transaction_restores_only_the_items_it_named() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..Default::default() }).await;
    let db = Client::new(&stack.aws().await);
    table(&db).await;
    for pk in ["kept", "taken", "bystander"] {
        db.put_item().table_name(TABLE).item("pk", s(pk)).item("v", s("before")).send().await.expect("put");
    }
    // Updates one item and creates another, then fails its condition on a third.
    let update = Update::builder()
        .table_name(TABLE)
        .key("pk", s("kept"))
        .update_expression("SET v = :v")
        .expression_attribute_values(":v", s("during"))
        .build()
        .expect("update");
    let failed = db
        .transact_write_items()
        .transact_items(TransactWriteItem::builder().update(update).build())
        .transact_items(put("created", None))
        .transact_items(put("taken", Some("attribute_not_exists(pk)")))
        .send()
        .await;
    let reasons: Vec<String> = failed
        .expect_err("the condition on `taken` fails")
        .as_service_error()
        .and_then(|e| match e {
            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => Some(c),
            _ => None,
        })
        .map(|c| c.cancellation_reasons().iter().map(|r| r.code().unwrap_or("").to_string()).collect())
        .unwrap_or_default();
    assert_eq!(reasons, ["None", "None", "ConditionalCheckFailed"]);
    let get = |pk: &'static str| db.get_item().table_name(TABLE).key("pk", s(pk)).consistent_read(true).send();
    assert_eq!(get("kept").await.expect("get").item.and_then(|i| i.get("v").cloned()), Some(s("before")), "the update is rolled back");
    assert!(get("created").await.expect("get").item.is_none(), "the created item is removed");
    assert_eq!(get("taken").await.expect("get").item.and_then(|i| i.get("v").cloned()), Some(s("before")));
    assert_eq!(get("bystander").await.expect("get").item.and_then(|i| i.get("v").cloned()), Some(s("before")));
}

/// Wall time of `n` sends to `queue`.
async fn sends(sqs: &aws_sdk_sqs::Client, queue: &str, n: usize) -> Duration {
    let started = Instant::now();
    for i in 0..n {
        sqs.send_message().queue_url(queue).message_body(format!("message {i}")).send().await.expect("send");
    }
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_and_receiving_cost_the_same_with_a_full_queue_as_with_a_short_one() {
    let stack = Stack::start(StackOptions { no_pollers: true, ..Default::default() }).await;
    let sqs = aws_sdk_sqs::Client::new(&stack.aws().await);
    let queue = sqs.create_queue().queue_name("emulator-load").send().await.expect("queue").queue_url.expect("url");
    sends(&sqs, &queue, 20).await; // warm
    let empty = sends(&sqs, &queue, 200).await;
    for _ in 0..500 {
        let entries: Vec<aws_sdk_sqs::types::SendMessageBatchRequestEntry> = (0..10)
            .map(|i| {
                aws_sdk_sqs::types::SendMessageBatchRequestEntry::builder()
                    .id(format!("m{i}"))
                    .message_body("filler")
                    .build()
                    .expect("entry")
            })
            .collect();
        sqs.send_message_batch().queue_url(&queue).set_entries(Some(entries)).send().await.expect("batch");
    }
    let full = sends(&sqs, &queue, 200).await;
    // Unpatched, every send counted the queue's messages three times over.
    let ratio = full.as_secs_f64() / empty.as_secs_f64();
    assert!(ratio < 3.0, "200 sends took {empty:?} to an empty queue and {full:?} to one holding 5,200 messages ({ratio:.1}x)");
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
        .send()
        .await
        .expect("attributes");
    let count = attributes.attributes().and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages)).cloned();
    assert_eq!(count.as_deref(), Some("5420"), "GetQueueAttributes still counts");

    // Receiving: ten at a time, as the pollers do, from a short queue and from the full one.
    let short = sqs.create_queue().queue_name("emulator-short").send().await.expect("queue").queue_url.expect("url");
    sends(&sqs, &short, 300).await;
    let receives = |queue: String| {
        let sqs = sqs.clone();
        async move {
            let started = Instant::now();
            for _ in 0..20 {
                let got = sqs.receive_message().queue_url(&queue).max_number_of_messages(10).send().await.expect("receive");
                assert_eq!(got.messages().len(), 10);
            }
            started.elapsed()
        }
    };
    let (from_short, from_full) = (receives(short).await, receives(queue).await);
    // Unpatched, every message received rebuilt the queue's attributes three times: 19.8x (47 s
    // for 200 messages). What remains (about 6x for 18 times the messages) is moto scanning the
    // queue for visible messages on each receive, as it is built.
    let ratio = from_full.as_secs_f64() / from_short.as_secs_f64();
    assert!(ratio < 10.0, "200 messages received in {from_short:?} from 300 and in {from_full:?} from 5,420 ({ratio:.1}x)");
}
