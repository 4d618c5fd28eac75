//! The gRPC messages between the clients and the proxy (`apache.rocketmq.v2`, `service.proto`),
//! reduced to what the modelled paths carry. A client's settings (`Settings`: the group's FIFO
//! flag, the backoff policy's `maxAttempts`) travel with its requests instead of through the
//! telemetry stream; the proxy uses them as `GrpcClientSettingsManager.getClientSettings`
//! would. `deadline` is the request's gRPC deadline as virtual time (a client's call timeout
//! from when it sent the request), which the proxy reads as `ProxyContext.getRemainingMs`.

use broker_core::{MessageExt, Millis};
use reports::history::GrpcCode;

/// `Status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub code: GrpcCode,
    pub message: String,
}

impl Status {
    pub fn ok() -> Self {
        Self::new(GrpcCode::Ok, "OK")
    }

    pub fn new(code: GrpcCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn is_ok(&self) -> bool {
        self.code == GrpcCode::Ok
    }
}

/// Who is calling: the client id (`ProxyContext.getClientID`, the channel its receipt
/// handles are kept under) and its group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub client_id: String,
    pub group: String,
}

/// `ReceiveMessageRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveMessageRequest {
    pub caller: Caller,
    pub topic: String,
    /// The message queue the client names (an assignment's queue, −1 for the broker's
    /// acting queue). The proxy selects by broker, whatever the id.
    pub queue_id: i32,
    pub batch_size: u32,
    /// `invisibleDuration` (the simple consumer), absent for the push consumer.
    pub invisible_duration: Option<Millis>,
    pub auto_renew: bool,
    pub long_polling_timeout: Option<Millis>,
    pub attempt_id: Option<String>,
    /// Settings: the group is FIFO.
    pub fifo: bool,
    /// Settings: `backoffPolicy.maxAttempts`.
    pub max_attempts: u32,
    pub deadline: Millis,
}

/// `ReceiveMessageResponse` (the stream's status, its messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveMessageResponse {
    pub status: Status,
    /// Messages as `GrpcConverter.buildMessage` builds them: `pop_ck` is the proxy's receipt
    /// handle (the broker's plus the commit log offset).
    pub messages: Vec<MessageExt>,
}

/// One `AckMessageEntry`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckEntry {
    pub msg_id: String,
    pub receipt_handle: String,
}

/// `AckMessageRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckMessageRequest {
    pub caller: Caller,
    pub topic: String,
    pub entries: Vec<AckEntry>,
    pub deadline: Millis,
}

/// `AckMessageResponse`: the overall status and one per entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckMessageResponse {
    pub status: Status,
    pub entries: Vec<(AckEntry, Status)>,
}

/// `ChangeInvisibleDurationRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeInvisibleDurationRequest {
    pub caller: Caller,
    pub topic: String,
    pub msg_id: String,
    pub receipt_handle: String,
    pub invisible_duration: Millis,
    pub deadline: Millis,
}

/// `ChangeInvisibleDurationResponse`: the new receipt handle on success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeInvisibleDurationResponse {
    pub status: Status,
    pub receipt_handle: String,
}

/// `ForwardMessageToDeadLetterQueueRequest`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForwardMessageToDeadLetterQueueRequest {
    pub caller: Caller,
    pub topic: String,
    pub msg_id: String,
    pub receipt_handle: String,
    pub delivery_attempt: u32,
    pub max_delivery_attempts: u32,
    pub deadline: Millis,
}

/// A call to the proxy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrpcRequest {
    ReceiveMessage(ReceiveMessageRequest),
    AckMessage(AckMessageRequest),
    ChangeInvisibleDuration(ChangeInvisibleDurationRequest),
    ForwardMessageToDeadLetterQueue(ForwardMessageToDeadLetterQueueRequest),
}

/// The proxy's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrpcResponse {
    ReceiveMessage(ReceiveMessageResponse),
    AckMessage(AckMessageResponse),
    ChangeInvisibleDuration(ChangeInvisibleDurationResponse),
    /// `ForwardMessageToDeadLetterQueueResponse`: the send-back's code as a status.
    ForwardMessageToDeadLetterQueue(Status),
}
