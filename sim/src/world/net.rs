//! The wire between clients and the broker: raw madsim datagrams carrying broker-core's
//! `Request`/`Response` values (no serialisation), one request tag and one response tag.
//!
//! Not madsim's RPC layer: it registers a random reply tag per call, and a reply that arrives
//! after the caller timed out stays in the mailbox forever (the mailbox is a Vec scanned on
//! every delivery, so long lossy runs slow down). Here every client endpoint has one
//! dispatcher task that receives all replies and drops the ones nobody waits for.

use broker_core::{Request, Response};
use std::collections::BTreeMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

use madsim::net::Endpoint;

/// Datagram tag of requests to the broker.
pub const REQUEST_TAG: u64 = 1;
/// Datagram tag of responses from the broker.
pub const RESPONSE_TAG: u64 = 2;
/// The broker's listen port (upstream's default `listenPort`).
pub const BROKER_PORT: u16 = 10911;

/// A request on the wire. `oneway` requests get no response (`invokeOneway`).
#[derive(Debug)]
pub struct Envelope {
    pub id: u64,
    pub oneway: bool,
    pub request: Request,
}

/// A response on the wire, matched to its request by `id`.
#[derive(Debug)]
pub struct Reply {
    pub id: u64,
    pub response: Response,
}

/// Why a call got no response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallError {
    /// Nothing came back within the timeout (lost, clogged, broker down or paused).
    Timeout,
}

type Pending = Arc<Mutex<BTreeMap<u64, oneshot::Sender<Response>>>>;

/// A client's connection to the broker: request/response with timeouts, and oneway sends.
#[derive(Clone)]
pub struct RpcClient {
    ep: Endpoint,
    broker: SocketAddr,
    pending: Pending,
    next_id: Arc<Mutex<u64>>,
}

impl RpcClient {
    /// Binds an endpoint on `ip` and starts the reply dispatcher on the current node.
    pub async fn connect(ip: IpAddr, broker: SocketAddr) -> io::Result<Self> {
        let ep = Endpoint::bind(SocketAddr::new(ip, 0)).await?;
        let pending: Pending = Arc::default();
        let (rx_ep, rx_pending) = (ep.clone(), pending.clone());
        madsim::task::spawn(async move {
            while let Ok((payload, _from)) = rx_ep.recv_from_raw(RESPONSE_TAG).await {
                let Ok(reply) = payload.downcast::<Reply>() else {
                    continue;
                };
                let waiter = rx_pending.lock().expect("pending lock").remove(&reply.id);
                if let Some(tx) = waiter {
                    let _ = tx.send(reply.response);
                }
            }
        });
        Ok(Self {
            ep,
            broker,
            pending,
            next_id: Arc::new(Mutex::new(0)),
        })
    }

    fn next_id(&self) -> u64 {
        let mut id = self.next_id.lock().expect("id lock");
        *id += 1;
        *id
    }

    /// Sends `request` and waits up to `timeout` for its response.
    pub async fn call(&self, request: Request, timeout: Duration) -> Result<Response, CallError> {
        let id = self.next_id();
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let envelope = Envelope {
            id,
            oneway: false,
            request,
        };
        let sent = self
            .ep
            .send_to_raw(self.broker, REQUEST_TAG, Box::new(envelope))
            .await;
        let result = match sent {
            Ok(()) => madsim::time::timeout(timeout, rx)
                .await
                .ok()
                .and_then(Result::ok),
            Err(_) => None,
        };
        // Forget the waiter so a late reply is dropped by the dispatcher.
        self.pending.lock().expect("pending lock").remove(&id);
        result.ok_or(CallError::Timeout)
    }

    /// Sends `request` without waiting for anything (`invokeOneway`).
    pub async fn oneway(&self, request: Request) {
        let id = self.next_id();
        let envelope = Envelope {
            id,
            oneway: true,
            request,
        };
        let _ = self
            .ep
            .send_to_raw(self.broker, REQUEST_TAG, Box::new(envelope))
            .await;
    }
}
