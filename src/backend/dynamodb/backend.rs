//! The DynamoDB store as a [`Backend`]: `type: dynamodb` in the
//! configuration. Each client gets a lane of its own — a task that runs the
//! client's commands on the table one after another, as redis-server runs
//! one connection's commands — so clients wait on DynamoDB side by side and
//! never on each other. No transactions, blocking commands, Pub/Sub or
//! databases beyond 0: the session refuses those with the capability error.

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{DynamoConfig, DynamoError, DynamoOp, DynamoStore};
use crate::backend::capability::BackendKind;
use crate::backend::pubsub::Subscriber;
use crate::backend::{
    Backend, Connection, InfoField, Lane, Purpose, Reply, Request, RequestKind, not_supported, rmw,
};
use crate::config::OutputBufferLimit;
use crate::error::ProxyError;
use crate::protocol::Frame;
use crate::protocol::reply::{error, ok};
use crate::semantics::errors;

pub struct DynamoBackend {
    name: String,
    store: Arc<DynamoStore>,
    command_timeout: Duration,
}

impl DynamoBackend {
    /// Opens the table (creating or checking it, see [`DynamoStore::open`]).
    pub async fn start(config: DynamoConfig) -> Result<Arc<DynamoBackend>, DynamoError> {
        let command_timeout = super::client::operation_budget(&config);
        let name = config.name.clone();
        let store = DynamoStore::open(config).await?;
        Ok(Arc::new(DynamoBackend {
            name,
            store,
            command_timeout,
        }))
    }

    pub fn store(&self) -> &Arc<DynamoStore> {
        &self.store
    }
}

/// Runs one client's requests on the table, in order; ends with the client.
async fn run_lane(store: Arc<DynamoStore>, mut requests: mpsc::UnboundedReceiver<Request>) {
    while let Some(mut request) = requests.recv().await {
        let outcome = match request.kind {
            // Only database 0 gets here: the session refuses SELECT n first.
            RequestKind::SelectProbe => Ok(select_probe(&request)),
            RequestKind::Normal => match request.sealed_args() {
                Ok(args) => store
                    .run(request.db, &args)
                    .await
                    .map_err(DynamoError::into_proxy),
                Err(e) => Err(e),
            },
        };
        request.answer(outcome.map(Reply::new));
    }
}

fn select_probe(request: &Request) -> Frame {
    match request.args.get(1).map(|a| a.as_ref()) {
        Some(b"0") => ok(),
        _ => error(errors::DB_OUT_OF_RANGE),
    }
}

impl Backend for DynamoBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::DynamoDb
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn lane(&self, _client_id: u64) -> Lane {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(run_lane(self.store.clone(), rx));
        tx
    }

    fn connection(
        &self,
        purpose: Purpose,
        _deadline: Instant,
    ) -> BoxFuture<'_, Result<Box<dyn Connection>, ProxyError>> {
        let command = match purpose {
            Purpose::Blocking => "blocking commands",
            _ => "MULTI/WATCH",
        };
        let refused = not_supported(command, self);
        Box::pin(async move { Err(refused) })
    }

    fn command_timeout(&self) -> Duration {
        self.command_timeout
    }

    fn subscriber(
        &self,
        _client_id: u64,
        _limit: OutputBufferLimit,
        _overflow: CancellationToken,
    ) -> Result<Box<dyn Subscriber>, ProxyError> {
        Err(not_supported("SUBSCRIBE", self))
    }

    fn read_modify_write<'a>(
        &'a self,
        db: u32,
        op: &'a mut dyn rmw::Rmw,
    ) -> BoxFuture<'a, Result<(), ProxyError>> {
        Box::pin(self.store.read_modify_write(db, op))
    }

    fn is_ready(&self) -> bool {
        self.store.is_reachable()
    }

    fn info(&self) -> Vec<InfoField> {
        let target = self.store.target();
        let mut fields = vec![("table", target.table.clone())];
        let counts = self.store.requests();
        fields.extend(
            DynamoOp::ALL
                .iter()
                .map(|op| (op.info_field(), counts.get(*op).to_string())),
        );
        fields
    }
}
