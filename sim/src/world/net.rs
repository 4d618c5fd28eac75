//! The wires. Between clients (and the proxy) and the broker: raw madsim datagrams carrying
//! broker-core's `Request`/`Response` values (no serialisation), one request tag and one
//! response tag; a lost datagram is a lost request or answer. Between the gRPC clients and
//! the proxy ([`GrpcClient`]): one madsim reliable, ordered connection per client (HTTP/2
//! over TCP): loss and clogs delay its messages, which madsim retransmits with a growing
//! backoff, instead of dropping them; a call still ends at its deadline.
//!
//! Not madsim's RPC layer: it registers a random reply tag per call, and a reply that arrives
//! after the caller timed out stays in the mailbox forever (the mailbox is a Vec scanned on
//! every delivery, so long lossy runs slow down). Here every client endpoint has one
//! dispatcher task that receives all replies and drops the ones nobody waits for.

use crate::proxy::protocol::{GrpcRequest, GrpcResponse};
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
/// The proxy's gRPC port (upstream's default `grpcServerPort`).
pub const PROXY_PORT: u16 = 8081;
/// How long a gRPC client waits before it tries a refused connection again.
const RECONNECT_DELAY: Duration = Duration::from_millis(1_000);

/// A request on the wire. `oneway` requests get no response (`invokeOneway`).
#[derive(Debug)]
pub struct Envelope<Q = Request> {
    pub id: u64,
    pub oneway: bool,
    pub request: Q,
}

/// A response on the wire, matched to its request by `id`.
#[derive(Debug)]
pub struct Reply<P = Response> {
    pub id: u64,
    pub response: P,
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

type GrpcPending = Arc<Mutex<BTreeMap<u64, oneshot::Sender<GrpcResponse>>>>;

/// A gRPC client's channel to the proxy: one reliable, ordered connection, calls matched to
/// answers by id, each call ending at its deadline (a late answer is dropped).
#[derive(Clone)]
pub struct GrpcClient {
    tx: Arc<madsim::net::Sender>,
    pending: GrpcPending,
    next_id: Arc<Mutex<u64>>,
}

impl GrpcClient {
    /// Binds an endpoint on `ip`, connects to the proxy (trying again every second while the
    /// connection is refused: the proxy is not up yet, or the first packet was lost) and
    /// starts the answer dispatcher on the current node.
    pub async fn connect(ip: IpAddr, proxy: SocketAddr) -> io::Result<Self> {
        let ep = Endpoint::bind(SocketAddr::new(ip, 0)).await?;
        let (tx, mut rx) = loop {
            match ep.connect1(proxy).await {
                Ok(conn) => break conn,
                Err(_) => madsim::time::sleep(RECONNECT_DELAY).await,
            }
        };
        let pending: GrpcPending = Arc::default();
        let rx_pending = pending.clone();
        madsim::task::spawn(async move {
            // Keep the endpoint (and so the connection) alive as long as the dispatcher.
            let _ep = ep;
            while let Ok(payload) = rx.recv().await {
                let Ok(reply) = payload.downcast::<Reply<GrpcResponse>>() else {
                    continue;
                };
                let waiter = rx_pending.lock().expect("pending lock").remove(&reply.id);
                if let Some(w) = waiter {
                    let _ = w.send(reply.response);
                }
            }
        });
        Ok(Self {
            tx: Arc::new(tx),
            pending,
            next_id: Arc::new(Mutex::new(0)),
        })
    }

    /// Sends `request` and waits up to `timeout` (the call's deadline) for its answer.
    pub async fn call(
        &self,
        request: GrpcRequest,
        timeout: Duration,
    ) -> Result<GrpcResponse, CallError> {
        let id = {
            let mut id = self.next_id.lock().expect("id lock");
            *id += 1;
            *id
        };
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        let envelope = Envelope {
            id,
            oneway: false,
            request,
        };
        let sent = self.tx.send(Box::new(envelope)).await;
        let result = match sent {
            Ok(()) => madsim::time::timeout(timeout, rx)
                .await
                .ok()
                .and_then(Result::ok),
            Err(_) => None,
        };
        self.pending.lock().expect("pending lock").remove(&id);
        result.ok_or(CallError::Timeout)
    }
}
