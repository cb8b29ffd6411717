//! The fan-out outside requests: the push queue (FIFO) and the settle
//! queue, their dead-letter queues, the three event source mappings and
//! what they feed, and the alarms on that path — each wired to the right
//! function and queue, with either store.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rollcall::config::Config;
use serde_json::{Value, json};

use super::eval::{Eval, queue_arn, stream_arn};
use super::iam::allows;
use super::model::{function, of_type, resource, target};

/// Logical ids of the event source mappings that exist under `eval`, by
/// the binary they invoke.
fn mappings(eval: &Eval) -> BTreeMap<String, Value> {
    of_type("AWS::Lambda::EventSourceMapping")
        .into_iter()
        .filter(|id| eval.exists(id))
        .map(|id| {
            let p = &resource(id)["Properties"];
            let logical = target(&p["FunctionName"]);
            let binary = super::model::functions()
                .into_iter()
                .find(|f| f.logical == logical)
                .unwrap_or_else(|| panic!("{id}: not a function: {logical}"))
                .binary;
            let mut props = eval.value(p).expect("mapping properties");
            props["Logical"] = json!(id);
            (binary, props)
        })
        .collect()
}

/// A function's timeout in seconds (its own, else the Globals').
fn timeout(binary: &str) -> u64 {
    let own = &resource(&function(binary).logical)["Properties"]["Timeout"];
    own.as_u64()
        .or_else(|| super::model::template()["Globals"]["Function"]["Timeout"].as_u64())
        .expect("Timeout")
}

/// The properties of queue `id`, resolved.
fn queue(eval: &Eval, id: &str) -> Value {
    assert_eq!(resource(id)["Type"], "AWS::SQS::Queue", "{id}");
    eval.value(&resource(id)["Properties"]).expect("queue")
}

/// The logical id of the queue whose ARN is `arn`.
fn queue_by_arn(eval: &Eval, arn: &str) -> String {
    of_type("AWS::SQS::Queue")
        .into_iter()
        .filter(|q| eval.exists(q))
        .find(|q| queue_arn(&eval.queue_name(q)) == arn)
        .unwrap_or_else(|| panic!("no queue has the ARN {arn}"))
        .to_owned()
}

/// Checks `id`'s dead-letter queue and returns its logical id.
fn dead_letters(eval: &Eval, id: &str, fifo: bool) -> String {
    let q = queue(eval, id);
    let redrive = &q["RedrivePolicy"];
    let tries = redrive["maxReceiveCount"]
        .as_u64()
        .expect("maxReceiveCount");
    assert!((3..=10).contains(&tries), "{id}: maxReceiveCount {tries}");
    let dlq = queue_by_arn(eval, redrive["deadLetterTargetArn"].as_str().expect("DLQ"));
    let d = queue(eval, &dlq);
    assert_eq!(
        d["FifoQueue"] == true,
        fifo,
        "{dlq}: a FIFO queue's DLQ is FIFO"
    );
    assert_eq!(d["SqsManagedSseEnabled"], true, "{dlq}: encrypted");
    assert_eq!(
        d["MessageRetentionPeriod"], 1_209_600,
        "{dlq}: kept 14 days"
    );
    assert!(d.get("RedrivePolicy").is_none(), "{dlq}");
    dlq
}

#[test]
fn the_push_queue_is_fifo_deduplicated_by_the_functions_ids_and_redriven() {
    let eval = Eval::new(&[]);
    let q = queue(&eval, "PushQueue");
    assert_eq!(q["FifoQueue"], true);
    assert!(eval.queue_name("PushQueue").ends_with(".fifo"));
    // `queue::sqs` gives every message a deduplication id; content-based
    // deduplication would drop the same event meant for another shard.
    assert_eq!(q["ContentBasedDeduplication"], false);
    assert_eq!(q["SqsManagedSseEnabled"], true, "encrypted at rest");
    let visibility = q["VisibilityTimeout"].as_u64().expect("VisibilityTimeout");
    assert!(
        visibility >= 6 * timeout("push"),
        "visibility {visibility} s < 6 × push's timeout ({} s)",
        timeout("push")
    );
    assert!(visibility <= 12 * 3600);
    dead_letters(&eval, "PushQueue", true);

    let s = queue(&eval, "SettleQueue");
    assert!(s.get("FifoQueue").is_none(), "the settle queue is standard");
    assert_eq!(s["SqsManagedSseEnabled"], true);
    let visibility = s["VisibilityTimeout"].as_u64().expect("VisibilityTimeout");
    assert!(visibility >= 6 * timeout("settle"), "{visibility}");
    assert!(
        s.get("DelaySeconds").is_none(),
        "each message has its own delay"
    );
    dead_letters(&eval, "SettleQueue", false);
    // The grace is a message delay: SQS delays at most 15 minutes.
    let env = eval.environment(&function("ws_disconnect").logical);
    let config = Config::from_lookup(|k| env.get(k).cloned()).expect("config");
    assert!(config.offline_grace <= Duration::from_secs(900));
}

#[test]
fn the_stream_feeds_fanout_and_the_queues_feed_push_and_settle() {
    let eval = Eval::new(&[]);
    let m = mappings(&eval);
    assert_eq!(
        m.keys().map(String::as_str).collect::<Vec<_>>(),
        ["fanout", "push", "settle"],
        "one mapping each"
    );

    let stream = &m["fanout"];
    assert_eq!(stream["EventSourceArn"], stream_arn("PresenceTable"));
    assert_eq!(stream["StartingPosition"], "LATEST");
    assert_eq!(
        stream["FunctionResponseTypes"],
        json!(["ReportBatchItemFailures"])
    );
    // Which records are events compares the new image with the old one:
    // no filter pattern can say it, so none may drop an event.
    assert!(stream.get("FilterCriteria").is_none());
    let retries = stream["MaximumRetryAttempts"].as_i64().expect("retries");
    assert!((0..=10_000).contains(&retries), "finite retries: {retries}");
    assert!(
        stream["MaximumRecordAgeInSeconds"]
            .as_i64()
            .is_some_and(|a| a > 0)
    );
    let failed = stream["DestinationConfig"]["OnFailure"]["Destination"]
        .as_str()
        .expect("an on-failure destination");
    let failures = queue_by_arn(&eval, failed);
    assert!(queue(&eval, &failures).get("FifoQueue").is_none());
    let fanout = eval.statements(&function("fanout").role);
    assert!(
        allows(&fanout, "sqs:SendMessage", failed),
        "the mapping writes its destination with fanout's role"
    );
    for action in [
        "dynamodb:DescribeStream",
        "dynamodb:GetRecords",
        "dynamodb:GetShardIterator",
        "dynamodb:ListStreams",
    ] {
        assert!(
            allows(&fanout, action, &stream_arn("PresenceTable")),
            "{action}"
        );
    }

    for (binary, source) in [("push", "PushQueue"), ("settle", "SettleQueue")] {
        let mapping = &m[binary];
        let arn = queue_arn(&eval.queue_name(source));
        assert_eq!(mapping["EventSourceArn"], arn.as_str(), "{binary}");
        assert_eq!(
            mapping["FunctionResponseTypes"],
            json!(["ReportBatchItemFailures"]),
            "{binary}: partial batch responses"
        );
        // The local stand-in hands over up to 10 messages at once (SQS's
        // most per receive, and a FIFO mapping's largest batch).
        assert_eq!(mapping["BatchSize"], 10, "{binary}");
        assert!(mapping.get("StartingPosition").is_none(), "{binary}");
        let role = eval.statements(&function(binary).role);
        for action in [
            "sqs:ReceiveMessage",
            "sqs:DeleteMessage",
            "sqs:GetQueueAttributes",
            // A failed message's retry backoff (`retry_later`).
            "sqs:ChangeMessageVisibility",
        ] {
            assert!(
                allows(&role, action, &arn),
                "{binary}: {action} on {source}"
            );
        }
    }

    // With Redis there is no stream (the handlers queue), but the queues
    // and their mappings stay.
    let redis = Eval::new(&[("Store", "redis://redis.internal:6379")]);
    assert_eq!(
        mappings(&redis)
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["push", "settle"]
    );
}

/// `(namespace, metric, dimension value)` of every alarm under `eval`.
fn alarms(eval: &Eval) -> BTreeSet<(String, String, String)> {
    of_type("AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|id| eval.exists(id))
        .map(|id| {
            let p = eval.value(&resource(id)["Properties"]).expect("alarm");
            assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold", "{id}");
            assert_eq!(p["TreatMissingData"], "notBreaching", "{id}");
            let dims = p["Dimensions"].as_array().expect("Dimensions");
            assert_eq!(dims.len(), 1, "{id}");
            (
                p["Namespace"].as_str().expect("Namespace").to_owned(),
                p["MetricName"].as_str().expect("MetricName").to_owned(),
                dims[0]["Value"].as_str().expect("dimension").to_owned(),
            )
        })
        .collect()
}

#[test]
fn the_fan_out_path_raises_alarms_on_errors_dead_letters_and_lag() {
    let eval = Eval::new(&[]);
    let have = alarms(&eval);
    let lambda = |m: &str, binary: &str| {
        (
            "AWS/Lambda".to_owned(),
            m.to_owned(),
            function(binary).logical,
        )
    };
    let sqs = |m: &str, q: &str| ("AWS/SQS".to_owned(), m.to_owned(), eval.queue_name(q));
    let mut dead: Vec<String> = vec![
        dead_letters(&eval, "PushQueue", true),
        dead_letters(&eval, "SettleQueue", false),
    ];
    let failed = mappings(&eval)["fanout"]["DestinationConfig"]["OnFailure"]["Destination"]
        .as_str()
        .map(|arn| queue_by_arn(&eval, arn))
        .expect("destination");
    dead.push(failed);
    let mut want: BTreeSet<_> = ["fanout", "push", "settle"]
        .into_iter()
        .map(|b| lambda("Errors", b))
        .collect();
    want.insert(lambda("IteratorAge", "fanout"));
    for q in &dead {
        want.insert(sqs("ApproximateNumberOfMessagesVisible", q));
    }
    want.insert(sqs("ApproximateAgeOfOldestMessage", "PushQueue"));
    assert_eq!(have, want);
    for id in of_type("AWS::CloudWatch::Alarm") {
        let p = eval.value(&resource(id)["Properties"]).expect("alarm");
        let threshold = p["Threshold"].as_f64().expect("Threshold");
        match p["MetricName"].as_str() {
            Some("Errors" | "ApproximateNumberOfMessagesVisible") => {
                assert_eq!(threshold, 0.0, "{id}: any at all");
            }
            _ => assert!(threshold > 0.0, "{id}"),
        }
        assert!(p.get("AlarmActions").is_none(), "{id}: no topic by default");
    }
    // Given a topic, every alarm tells it.
    let topic = "arn:aws:sns:us-east-1:123456789012:rollcall-alarms";
    let told = Eval::new(&[("AlarmTopicArn", topic)]);
    for id in of_type("AWS::CloudWatch::Alarm") {
        let p = told.value(&resource(id)["Properties"]).expect("alarm");
        assert_eq!(p["AlarmActions"], json!([topic]), "{id}");
        assert_eq!(p["OKActions"], json!([topic]), "{id}");
    }
    // With Redis: no stream, so no lag or failure destination to watch.
    let redis = alarms(&Eval::new(&[("Store", "redis://redis.internal:6379")]));
    assert!(redis.iter().all(|(_, m, _)| m != "IteratorAge"));
    assert_eq!(redis.len(), want.len() - 2);
}
