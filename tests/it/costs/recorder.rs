//! [`Recorder`]: an SDK interceptor that records every DynamoDB or SQS
//! request (operation, table or queue, index, consistency, the presence
//! items it writes, the size of what a query returned) with the function
//! that sent it.

use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::config::interceptors::{
    BeforeDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use aws_smithy_types::config_bag::{Storable, StoreReplace};
use rollcall_local_server::gateway;
use serde_json::Value;

/// One request as sent (one per attempt: what DynamoDB and SQS bill).
#[derive(Debug, Clone)]
pub(super) struct Call {
    /// The function that sent it (`http`, `ws_connect`, `push`, …), `None`
    /// outside the stand-in's functions (the test's own calls, a sweep the
    /// test runs).
    pub(super) function: Option<&'static str>,
    /// `GetItem`, `Query`, `SendMessageBatch`, … (from `X-Amz-Target`).
    pub(super) op: String,
    /// The table (DynamoDB), or the queue's URL (SQS).
    pub(super) table: String,
    /// For `TransactWriteItems`, each item's
    /// (`Put`|`Update`|`Delete`|`ConditionCheck`, table).
    pub(super) items: Vec<(String, String)>,
    /// The index a `Query` or `Scan` reads, if any.
    pub(super) index: Option<String>,
    /// Whether the read is strongly consistent (`ConsistentRead`).
    pub(super) consistent: bool,
    /// The `username` keys of the items it writes (puts, updates, deletes,
    /// in a transaction or not): which presence item a change belongs to.
    pub(super) keys: Vec<(String, String)>,
    /// SQS: the messages it sends (a batch's entries).
    pub(super) messages: usize,
    /// `Query`/`Scan`: the DynamoDB size of the items returned (what read
    /// units are counted from), once the answer came.
    pub(super) read_bytes: Option<u64>,
}

/// Which call of the recorder this request is (kept in its config bag
/// from sending to answer).
#[derive(Debug, Clone)]
struct CallIndex(usize);

impl Storable for CallIndex {
    type Storer = StoreReplace<Self>;
}

/// Records every request of the client it is installed in.
#[derive(Debug, Clone, Default)]
pub(super) struct Recorder {
    calls: Arc<Mutex<Vec<Call>>>,
    /// Only requests a function makes (an SQS client the event source
    /// mappings share with the functions: their polling is not per event).
    functions_only: bool,
}

impl Recorder {
    /// A recorder of the requests made inside the stand-in's functions only.
    pub(super) fn of_functions() -> Self {
        Self {
            functions_only: true,
            ..Self::default()
        }
    }

    /// How many requests so far.
    pub(super) fn len(&self) -> usize {
        self.calls.lock().expect("recorder").len()
    }

    /// The requests after the first `from`.
    pub(super) fn since(&self, from: usize) -> Vec<Call> {
        self.calls.lock().expect("recorder")[from..].to_vec()
    }
}

/// The `(table, username)` of a write's key, if it has a `username`.
fn key_of(spec: &Value) -> Option<(String, String)> {
    let name = spec["Key"]["username"]["S"]
        .as_str()
        .or_else(|| spec["Item"]["username"]["S"].as_str())?;
    Some((spec["TableName"].as_str()?.to_owned(), name.to_owned()))
}

/// DynamoDB's size of an attribute value (UTF-8 bytes of a string, about
/// one byte per two significant digits of a number plus one, …).
fn value_size(v: &Value) -> u64 {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" | "B" => inner.as_str().map_or(0, |s| s.len() as u64),
        "N" => {
            let digits = inner
                .as_str()
                .unwrap_or_default()
                .trim_start_matches('-')
                .replace('.', "");
            let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
            (significant as u64).div_ceil(2) + 1
        }
        "BOOL" | "NULL" => 1,
        "L" => {
            3 + inner
                .as_array()
                .into_iter()
                .flatten()
                .map(|e| 1 + value_size(e))
                .sum::<u64>()
        }
        "M" => 3 + item_size(inner),
        _ => 0,
    }
}

/// DynamoDB's size of an item: its attribute names and values.
pub(super) fn item_size(item: &Value) -> u64 {
    item.as_object()
        .into_iter()
        .flatten()
        .map(|(name, v)| name.len() as u64 + value_size(v))
        .sum()
}

impl Intercept for Recorder {
    fn name(&self) -> &'static str {
        "rollcall-tests-call-recorder"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let function = gateway::current_function();
        if self.functions_only && function.is_none() {
            return Ok(());
        }
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
        let transact = body["TransactItems"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let items = transact
            .iter()
            .filter_map(|item| {
                let (kind, spec) = item.as_object()?.iter().next()?;
                Some((kind.clone(), text(&spec["TableName"])))
            })
            .collect();
        let mut keys: Vec<(String, String)> = transact
            .iter()
            .filter_map(|item| {
                let (kind, spec) = item.as_object()?.iter().next()?;
                (kind != "ConditionCheck").then(|| key_of(spec)).flatten()
            })
            .collect();
        if matches!(op.as_str(), "PutItem" | "UpdateItem" | "DeleteItem") {
            keys.extend(key_of(&body));
        }
        let messages = match op.as_str() {
            "SendMessageBatch" => body["Entries"].as_array().map_or(0, Vec::len),
            "SendMessage" => 1,
            _ => 0,
        };
        let mut calls = self.calls.lock().expect("recorder");
        cfg.interceptor_state().store_put(CallIndex(calls.len()));
        calls.push(Call {
            function,
            op,
            table: body["TableName"]
                .as_str()
                .or_else(|| body["QueueUrl"].as_str())
                .unwrap_or_default()
                .to_owned(),
            items,
            index: body["IndexName"].as_str().map(str::to_owned),
            consistent: body["ConsistentRead"] == true,
            keys,
            messages,
            read_bytes: None,
        });
        Ok(())
    }

    fn read_before_deserialization(
        &self,
        context: &BeforeDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(CallIndex(i)) = cfg.load::<CallIndex>().cloned() else {
            return Ok(());
        };
        let body: Value = context
            .response()
            .body()
            .bytes()
            .and_then(|b| serde_json::from_slice(b).ok())
            .unwrap_or(Value::Null);
        if let Some(items) = body["Items"].as_array() {
            let bytes = items.iter().map(item_size).sum();
            if let Some(call) = self.calls.lock().expect("recorder").get_mut(i) {
                call.read_bytes = Some(bytes);
            }
        }
        Ok(())
    }
}
