//! [`Recorder`]: an SDK interceptor that records every DynamoDB request
//! (operation, table, index, consistency) with the function that sent it.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use rollcall_local_server::gateway;
use serde_json::Value;

/// One DynamoDB request as sent (one per attempt: what DynamoDB bills).
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// The function that sent it (`http`, `ws_connect`, …), `None` outside
    /// the stand-in (the test's own calls, a sweep the test runs).
    pub(super) function: Option<&'static str>,
    /// `GetItem`, `Query`, … (from `X-Amz-Target`).
    pub(super) op: String,
    /// The table, or for `TransactWriteItems` each item's
    /// (`Put`|`Update`|`Delete`|`ConditionCheck`, table).
    pub(super) table: String,
    /// See `table`.
    pub(super) items: Vec<(String, String)>,
    /// The index a `Query` or `Scan` reads, if any.
    pub(super) index: Option<String>,
    /// Whether the read is strongly consistent (`ConsistentRead`).
    pub(super) consistent: bool,
}

/// Records every DynamoDB request of the client it is installed in.
#[derive(Debug, Clone, Default)]
pub(super) struct Recorder(Arc<Mutex<Vec<Call>>>);

impl Recorder {
    /// How many requests so far.
    pub(super) fn len(&self) -> usize {
        self.0.lock().expect("recorder").len()
    }

    /// The requests after the first `from`.
    pub(super) fn since(&self, from: usize) -> Vec<Call> {
        self.0.lock().expect("recorder")[from..].to_vec()
    }
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "rollcall-tests-call-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let req = context.request();
        let op = req
            .headers()
            .get("x-amz-target")
            .and_then(|t| t.rsplit('.').next())
            .unwrap_or("?")
            .to_owned();
        let body: Value = req
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let items = body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| {
                let (kind, spec) = item.as_object()?.iter().next()?;
                Some((kind.clone(), text(&spec["TableName"])))
            })
            .collect();
        self.0.lock().expect("recorder").push(Call {
            function: gateway::current_function(),
            op,
            table: text(&body["TableName"]),
            items,
            index: body["IndexName"].as_str().map(str::to_owned),
            consistent: body["ConsistentRead"] == true,
        });
        Ok(())
    }
}
