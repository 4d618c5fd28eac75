//! The wires: raw madsim datagrams carrying request and response values (no
//! serialisation). Two wires exist, each with its own pair of tags: the remoting wire
//! (broker-core's `Request`/`Response`, to the broker's `listenPort`) and the gRPC wire
//! (the proxy's messages, to the proxy's gRPC port).
//!
//! Not madsim's RPC layer: it registers a random reply tag per call, and a reply that arrives
//! after the caller timed out stays in the mailbox forever (the mailbox is a Vec scanned on
//! every delivery, so long lossy runs slow down). Here every client endpoint has one
//! dispatcher task that receives all replies and drops the ones nobody waits for.

use broker_core::{Request, Response};
use std::collections::BTreeMap;
use std::io;
use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

use madsim::net::Endpoint;

/// Datagram tag of requests to the broker.
pub const REQUEST_TAG: u64 = 1;
/// Datagram tag of responses from the broker.
pub const RESPONSE_TAG: u64 = 2;
/// Datagram tag of gRPC requests to the proxy.
pub const GRPC_REQUEST_TAG: u64 = 3;
/// Datagram tag of gRPC responses from the proxy.
pub const GRPC_RESPONSE_TAG: u64 = 4;
/// The broker's listen port (upstream's default `listenPort`).
pub const BROKER_PORT: u16 = 10911;
/// The proxy's gRPC port (upstream's default `grpcServerPort`).
pub const PROXY_PORT: u16 = 8081;

/// One wire's messages and tags.
pub trait Wire: 'static {
    type Req: Send + Sync + 'static;
    type Resp: Send + Sync + 'static;
    const REQUEST_TAG: u64;
    const RESPONSE_TAG: u64;
}

/// The remoting protocol to the broker.
pub struct Remoting;

impl Wire for Remoting {
    type Req = Request;
    type Resp = Response;
    const REQUEST_TAG: u64 = REQUEST_TAG;
    const RESPONSE_TAG: u64 = RESPONSE_TAG;
}

/// The gRPC protocol to the proxy (`apache.rocketmq.v2.MessagingService`).
pub struct Grpc;

impl Wire for Grpc {
    type Req = crate::proxy::protocol::GrpcRequest;
    type Resp = crate::proxy::protocol::GrpcResponse;
    const REQUEST_TAG: u64 = GRPC_REQUEST_TAG;
    const RESPONSE_TAG: u64 = GRPC_RESPONSE_TAG;
}

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

type Pending<P> = Arc<Mutex<BTreeMap<u64, oneshot::Sender<P>>>>;

/// A client's connection to the broker (or, [`GrpcClient`], to the proxy):
/// request/response with timeouts, and oneway sends.
pub struct RpcClient<W: Wire = Remoting> {
    ep: Endpoint,
    broker: SocketAddr,
    pending: Pending<W::Resp>,
    next_id: Arc<Mutex<u64>>,
    wire: PhantomData<fn() -> W>,
}

/// A gRPC client's connection to the proxy.
pub type GrpcClient = RpcClient<Grpc>;

impl<W: Wire> Clone for RpcClient<W> {
    fn clone(&self) -> Self {
        Self {
            ep: self.ep.clone(),
            broker: self.broker,
            pending: self.pending.clone(),
            next_id: self.next_id.clone(),
            wire: PhantomData,
        }
    }
}

impl<W: Wire> RpcClient<W> {
    /// Binds an endpoint on `ip` and starts the reply dispatcher on the current node;
    /// `server` is the broker (or the proxy).
    pub async fn connect(ip: IpAddr, server: SocketAddr) -> io::Result<Self> {
        let ep = Endpoint::bind(SocketAddr::new(ip, 0)).await?;
        let pending: Pending<W::Resp> = Arc::default();
        let (rx_ep, rx_pending) = (ep.clone(), pending.clone());
        madsim::task::spawn(async move {
            while let Ok((payload, _from)) = rx_ep.recv_from_raw(W::RESPONSE_TAG).await {
                let Ok(reply) = payload.downcast::<Reply<W::Resp>>() else {
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
            broker: server,
            pending,
            next_id: Arc::new(Mutex::new(0)),
            wire: PhantomData,
        })
    }

    fn next_id(&self) -> u64 {
        let mut id = self.next_id.lock().expect("id lock");
        *id += 1;
        *id
    }

    /// Sends `request` and waits up to `timeout` for its response.
    pub async fn call(&self, request: W::Req, timeout: Duration) -> Result<W::Resp, CallError> {
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
            .send_to_raw(self.broker, W::REQUEST_TAG, Box::new(envelope))
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
    pub async fn oneway(&self, request: W::Req) {
        let id = self.next_id();
        let envelope = Envelope {
            id,
            oneway: true,
            request,
        };
        let _ = self
            .ep
            .send_to_raw(self.broker, W::REQUEST_TAG, Box::new(envelope))
            .await;
    }
}
