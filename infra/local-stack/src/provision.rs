//! Creates every table, queue, bus, archive, rule and bucket of template.yaml on the emulator,
//! through the same SDK the functions use. Re-running against a live emulator is harmless:
//! "already exists" counts as done.

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::Value as Json;

use crate::template::{json_scalar, Template};

#[derive(Debug, thiserror::Error)]
#[error("provisioning {resource} ({kind}) failed: {message}")]
pub struct ProvisionError {
    pub resource: String,
    pub kind: String,
    pub message: String,
}

/// Resource types the local stack creates; everything else is reported once as skipped.
const CREATED: &[&str] = &[
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::Events::EventBus",
    "AWS::Events::Archive",
    "AWS::Events::Rule",
    "AWS::S3::Bucket",
    "AWS::SES::EmailIdentity",
    "AWS::SES::ConfigurationSet",
];
/// Types that need no emulator resource locally (IAM is not enforced; functions and APIs run in
/// this process; alarms have no local meaning).
const NOT_NEEDED: &[&str] = &[
    "AWS::Serverless::Function",
    "AWS::Serverless::HttpApi",
    "AWS::SQS::QueuePolicy",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::Dashboard",
    "AWS::IAM::Role",
    "AWS::IAM::Policy",
    "AWS::Logs::LogGroup",
    // The emulator sends nothing anywhere, so it has no bounces to publish: the tests feed
    // SES's documented event records to the default bus instead.
    "AWS::SES::ConfigurationSetEventDestination",
    // The local stack fires no schedule: a test ticks by sending the schedule's target input to
    // its queue, as EventBridge Scheduler would (tests/payroll.rs).
    "AWS::Scheduler::Schedule",
];

pub struct Clients {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub events: aws_sdk_eventbridge::Client,
    pub s3: aws_sdk_s3::Client,
    pub ses: aws_sdk_sesv2::Client,
}

impl Clients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        let s3_config = aws_sdk_s3::config::Builder::from(config).force_path_style(true).build();
        Self {
            dynamodb: aws_sdk_dynamodb::Client::new(config),
            sqs: aws_sdk_sqs::Client::new(config),
            events: aws_sdk_eventbridge::Client::new(config),
            s3: aws_sdk_s3::Client::from_conf(s3_config),
            ses: aws_sdk_sesv2::Client::new(config),
        }
    }
}

/// Creates everything, in dependency order; fills in queue URLs on the template.
pub async fn provision(t: &mut Template, c: &Clients) -> Result<(), ProvisionError> {
    for r in t.resources.iter().filter(|r| !CREATED.contains(&r.kind.as_str()) && !NOT_NEEDED.contains(&r.kind.as_str())) {
        tracing::warn!(resource = %r.logical_id, kind = %r.kind, "the local stack does not emulate this resource type");
    }
    for id in ids(t, "AWS::DynamoDB::Table") {
        table(t, c, &id).await?;
    }
    for id in ids(t, "AWS::S3::Bucket") {
        let name = t.physical[&id].name.clone();
        match c.s3.create_bucket().bucket(&name).send().await {
            Ok(_) => {}
            Err(e) if e.as_service_error().is_some_and(|s| s.is_bucket_already_owned_by_you() || s.is_bucket_already_exists()) => {}
            Err(e) => return Err(fail(t, &id, aws_sdk_s3::error::DisplayErrorContext(e))),
        }
    }
    for id in ids(t, "AWS::Events::EventBus") {
        let name = t.physical[&id].name.clone();
        if let Err(e) = c.events.create_event_bus().name(&name).send().await {
            if !e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) {
                return Err(fail(t, &id, aws_sdk_eventbridge::error::DisplayErrorContext(e)));
            }
        }
    }
    // Dead-letter queues first: a redrive policy names its DLQ.
    let mut queues = ids(t, "AWS::SQS::Queue");
    queues.sort_by_key(|id| t.resources.iter().any(|r| &r.logical_id == id && r.properties.get("RedrivePolicy").is_some()));
    for id in queues {
        queue(t, c, &id).await?;
    }
    for id in ids(t, "AWS::Events::Archive") {
        let props = props(t, &id)?;
        let name = t.physical[&id].name.clone();
        let mut req = c.events.create_archive().archive_name(&name).event_source_arn(str_of(&props, "SourceArn"));
        if let Some(days) = props.get("RetentionDays").map(json_scalar).and_then(|d| d.parse().ok()) {
            req = req.retention_days(days);
        }
        if let Some(pattern) = props.get("EventPattern") {
            req = req.event_pattern(pattern.to_string());
        }
        if let Err(e) = req.send().await {
            if !e.as_service_error().is_some_and(|s| s.is_resource_already_exists_exception()) {
                return Err(fail(t, &id, aws_sdk_eventbridge::error::DisplayErrorContext(e)));
            }
        }
    }
    for id in ids(t, "AWS::Events::Rule") {
        rule(t, c, &id).await?;
    }
    for id in ids(t, "AWS::SES::ConfigurationSet") {
        let name = t.physical[&id].name.clone();
        if let Err(e) = c.ses.create_configuration_set().configuration_set_name(&name).send().await {
            if !e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) {
                return Err(fail(t, &id, aws_sdk_sesv2::error::DisplayErrorContext(e)));
            }
        }
    }
    for id in ids(t, "AWS::SES::EmailIdentity") {
        let identity = str_of(&props(t, &id)?, "EmailIdentity");
        if let Err(e) = c.ses.create_email_identity().email_identity(&identity).send().await {
            if !e.as_service_error().is_some_and(|s| s.is_already_exists_exception()) {
                return Err(fail(t, &id, aws_sdk_sesv2::error::DisplayErrorContext(e)));
            }
        }
    }
    Ok(())
}

fn ids(t: &Template, kind: &str) -> Vec<String> {
    t.of_kind(kind).map(|r| r.logical_id.clone()).collect()
}

fn props(t: &Template, id: &str) -> Result<Json, ProvisionError> {
    let r = t.resources.iter().find(|r| r.logical_id == id).ok_or_else(|| fail(t, id, "no such resource"))?;
    t.resolve(&r.properties).map_err(|e| fail(t, id, e))
}

fn fail(t: &Template, id: &str, message: impl std::fmt::Display) -> ProvisionError {
    let kind = t.resources.iter().find(|r| r.logical_id == id).map(|r| r.kind.clone()).unwrap_or_default();
    ProvisionError { resource: id.to_string(), kind, message: message.to_string() }
}

fn str_of(v: &Json, key: &str) -> String {
    v.get(key).map(json_scalar).unwrap_or_default()
}

fn key_schema(v: &Json) -> Vec<KeySchemaElement> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|k| {
            KeySchemaElement::builder()
                .attribute_name(str_of(k, "AttributeName"))
                .key_type(if str_of(k, "KeyType") == "RANGE" { KeyType::Range } else { KeyType::Hash })
                .build()
                .ok()
        })
        .collect()
}

async fn table(t: &Template, c: &Clients, id: &str) -> Result<(), ProvisionError> {
    let p = props(t, id)?;
    let name = t.physical[id].name.clone();
    let attrs: Vec<AttributeDefinition> = p["AttributeDefinitions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let ty = match str_of(a, "AttributeType").as_str() {
                "N" => ScalarAttributeType::N,
                "B" => ScalarAttributeType::B,
                _ => ScalarAttributeType::S,
            };
            AttributeDefinition::builder().attribute_name(str_of(a, "AttributeName")).attribute_type(ty).build().ok()
        })
        .collect();
    let mut req = c
        .dynamodb
        .create_table()
        .table_name(&name)
        .set_attribute_definitions(Some(attrs))
        .set_key_schema(Some(key_schema(&p["KeySchema"])))
        .billing_mode(BillingMode::PayPerRequest);
    for g in p["GlobalSecondaryIndexes"].as_array().into_iter().flatten() {
        let projection = match str_of(&g["Projection"], "ProjectionType").as_str() {
            "KEYS_ONLY" => ProjectionType::KeysOnly,
            "INCLUDE" => ProjectionType::Include,
            _ => ProjectionType::All,
        };
        let mut proj = Projection::builder().projection_type(projection);
        for a in g["Projection"]["NonKeyAttributes"].as_array().into_iter().flatten() {
            proj = proj.non_key_attributes(json_scalar(a));
        }
        let gsi = GlobalSecondaryIndex::builder()
            .index_name(str_of(g, "IndexName"))
            .set_key_schema(Some(key_schema(&g["KeySchema"])))
            .projection(proj.build())
            .build()
            .map_err(|e| fail(t, id, e))?;
        req = req.global_secondary_indexes(gsi);
    }
    match req.send().await {
        Ok(_) => {}
        Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_in_use_exception()) => return Ok(()),
        Err(e) => return Err(fail(t, id, aws_sdk_dynamodb::error::DisplayErrorContext(e))),
    }
    if let Some(ttl) = p.get("TimeToLiveSpecification") {
        let spec = TimeToLiveSpecification::builder()
            .attribute_name(str_of(ttl, "AttributeName"))
            .enabled(ttl.get("Enabled").and_then(Json::as_bool).unwrap_or(false))
            .build()
            .map_err(|e| fail(t, id, e))?;
        c.dynamodb
            .update_time_to_live()
            .table_name(&name)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| fail(t, id, aws_sdk_dynamodb::error::DisplayErrorContext(e)))?;
    }
    Ok(())
}

async fn queue(t: &mut Template, c: &Clients, id: &str) -> Result<(), ProvisionError> {
    let p = props(t, id)?;
    let name = t.physical[id].name.clone();
    let mut req = c.sqs.create_queue().queue_name(&name);
    let simple = [
        ("VisibilityTimeout", QueueAttributeName::VisibilityTimeout),
        ("MessageRetentionPeriod", QueueAttributeName::MessageRetentionPeriod),
        ("DelaySeconds", QueueAttributeName::DelaySeconds),
        ("MaximumMessageSize", QueueAttributeName::MaximumMessageSize),
        ("ReceiveMessageWaitTimeSeconds", QueueAttributeName::ReceiveMessageWaitTimeSeconds),
        ("FifoQueue", QueueAttributeName::FifoQueue),
        ("ContentBasedDeduplication", QueueAttributeName::ContentBasedDeduplication),
    ];
    // RELAY_LOCAL_VISIBILITY_TIMEOUT_SECONDS shortens every queue's visibility timeout, so a
    // test can watch a failed message come back in seconds rather than the template's minutes.
    let visibility = std::env::var("RELAY_LOCAL_VISIBILITY_TIMEOUT_SECONDS").ok().filter(|v| v.parse::<u32>().is_ok());
    for (prop, attr) in simple {
        match (prop, &visibility, p.get(prop)) {
            ("VisibilityTimeout", Some(v), _) => req = req.attributes(attr, v.clone()),
            (_, _, Some(v)) => req = req.attributes(attr, json_scalar(v)),
            _ => {}
        }
    }
    if let Some(redrive) = p.get("RedrivePolicy") {
        req = req.attributes(QueueAttributeName::RedrivePolicy, redrive.to_string());
    }
    let out = req.send().await.map_err(|e| fail(t, id, aws_sdk_sqs::error::DisplayErrorContext(e)))?;
    if let Some(p) = t.physical.get_mut(id) {
        p.url = out.queue_url;
    }
    Ok(())
}

async fn rule(t: &Template, c: &Clients, id: &str) -> Result<(), ProvisionError> {
    let p = props(t, id)?;
    let name = t.physical[id].name.clone();
    let bus = str_of(&p, "EventBusName");
    let mut req = c.events.put_rule().name(&name).state(if str_of(&p, "State") == "DISABLED" {
        aws_sdk_eventbridge::types::RuleState::Disabled
    } else {
        aws_sdk_eventbridge::types::RuleState::Enabled
    });
    if !bus.is_empty() {
        req = req.event_bus_name(&bus);
    }
    if let Some(pattern) = p.get("EventPattern") {
        req = req.event_pattern(pattern.to_string());
    }
    if let Some(schedule) = p.get("ScheduleExpression") {
        req = req.schedule_expression(json_scalar(schedule));
    }
    req.send().await.map_err(|e| fail(t, id, aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
    let mut targets = Vec::new();
    for target in p["Targets"].as_array().into_iter().flatten() {
        let mut b = aws_sdk_eventbridge::types::Target::builder().id(str_of(target, "Id")).arn(str_of(target, "Arn"));
        if let Some(input) = target.get("Input") {
            b = b.input(json_scalar(input));
        }
        if let Some(group) = target.get("SqsParameters").and_then(|s| s.get("MessageGroupId")) {
            b = b.sqs_parameters(aws_sdk_eventbridge::types::SqsParameters::builder().message_group_id(json_scalar(group)).build());
        }
        targets.push(b.build().map_err(|e| fail(t, id, e))?);
    }
    if !targets.is_empty() {
        let mut req = c.events.put_targets().rule(&name).set_targets(Some(targets));
        if !bus.is_empty() {
            req = req.event_bus_name(&bus);
        }
        req.send().await.map_err(|e| fail(t, id, aws_sdk_eventbridge::error::DisplayErrorContext(e)))?;
    }
    Ok(())
}
