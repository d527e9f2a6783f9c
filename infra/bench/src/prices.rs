//! AWS list prices, us-east-1, on-demand, arm64, without free tiers: the one place the cost
//! benchmark's dollars come from. Checked against the public price pages on 2026-11-24 (the
//! DynamoDB on-demand figures are those of the November 2024 price cut, still current).
//! A price change is an edit here and a new `./dev bench` run.

/// <https://aws.amazon.com/dynamodb/pricing/on-demand/>: per million write request units
/// (1 KB of item per unit; transactional writes take two).
pub const DYNAMODB_PER_MILLION_WRU: f64 = 0.625;
/// Per million read request units (4 KB strongly consistent, or two eventually consistent reads).
pub const DYNAMODB_PER_MILLION_RRU: f64 = 0.125;

/// <https://aws.amazon.com/api-gateway/pricing/>: HTTP APIs, first 300 million requests a month
/// (each 512 KB of request or response is a request).
pub const API_GATEWAY_HTTP_PER_MILLION: f64 = 1.00;

/// <https://aws.amazon.com/eventbridge/pricing/>: custom events put on a bus, each 64 KB chunk
/// of an entry one event. Rule targets in the same account cost nothing more.
pub const EVENTBRIDGE_PER_MILLION_EVENTS: f64 = 1.00;

/// <https://aws.amazon.com/sqs/pricing/>: standard queue requests, each 64 KB chunk one request.
/// The SendMessage EventBridge makes for a rule target and Lambda's polling are such requests.
pub const SQS_PER_MILLION_REQUESTS: f64 = 0.40;

/// <https://aws.amazon.com/lambda/pricing/>: Arm, per GB-second of billed duration (1 ms
/// granularity), and per million invocations.
pub const LAMBDA_ARM_PER_GB_SECOND: f64 = 0.000_013_333_4;
pub const LAMBDA_PER_MILLION_REQUESTS: f64 = 0.20;
/// <https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html>: "At 1,769 MB, a
/// function has the equivalent of one vCPU"; below it, CPU in proportion to memory.
pub const LAMBDA_MB_PER_VCPU: f64 = 1769.0;

/// <https://aws.amazon.com/s3/pricing/>: S3 Standard, per 1,000 PUT/POST/LIST and per 1,000 GET.
pub const S3_PER_THOUSAND_PUT: f64 = 0.005;
pub const S3_PER_THOUSAND_GET: f64 = 0.0004;

/// <https://aws.amazon.com/cloudwatch/pricing/>: log ingestion (standard class) per GB; every
/// EMF metric line and every log line a function writes is ingested.
pub const CLOUDWATCH_LOGS_PER_GB: f64 = 0.50;

/// The latency a Lambda function waits on each AWS call in-region, for billed duration: the
/// emulator is many times slower than the services, so its wall time is not the bill. Typical
/// single-digit-millisecond p50s as AWS documents them for each service in the same region.
pub const LATENCY_MS_DYNAMODB: f64 = 6.0;
pub const LATENCY_MS_EVENTBRIDGE: f64 = 15.0;
pub const LATENCY_MS_SQS: f64 = 8.0;
pub const LATENCY_MS_S3: f64 = 20.0;
/// What Lambda itself logs per invocation in the JSON log format at `SystemLogLevel: INFO`:
/// a `platform.start` record (about 130 bytes) and a `platform.report` record (about 270: the
/// durations, memory size, max memory used, and the init duration after a cold start), as
/// their documented shapes come out with real request ids. CloudWatch Logs ingests them too.
pub const PLATFORM_LOG_BYTES_PER_INVOCATION: f64 = 400.0;

/// An endpoint answering a webhook (a fast receiver; slow ones bill their own time).
pub const LATENCY_MS_ENDPOINT: f64 = 30.0;
