//! Commands sealcache answers itself (AUTH, HELLO, SELECT, CLIENT …) or
//! forwards with a change to the reply (INFO, CONFIG GET).

use bytes::Bytes;

use super::{Flow, Post, Session};
use crate::backend::{Encoding, Request, RequestKind};
use crate::commands::{Command, Local};
use crate::error::ProxyError;
use crate::protocol::Protocol;
use crate::protocol::reply::{self, NullStyle, array, bulk, error_text, int, map, null};

/// The Redis version HELLO and INFO report when no Redis stands behind the
/// default route (the commands sealcache serves are Redis 7.0's).
const COMPATIBLE_VERSION: &str = "7.0.15";

/// redis-server 7.0's reply to a HELLO without credentials on an unauthenticated connection.
const HELLO_NOAUTH: &str = "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time";

impl Session {
    pub(super) async fn local(&mut self, cmd: Command, local: Local) -> Flow {
        let default = self.ctx.default_backend_index();
        // redis-server runs QUIT and RESET at once, inside MULTI too (they end
        // the transaction with the rest of the connection's state).
        if self.multi.is_some() && !matches!(local, Local::Quit | Local::Reset) {
            // Inside MULTI, Redis queues these; the backend can run PING and ECHO for us.
            if local.queued_upstream() {
                let backend = self.transaction_backend().unwrap_or(default);
                return self
                    .forward(cmd, Encoding::Args, Post::None, NullStyle::Bulk, backend)
                    .await;
            }
            let msg = format!(
                "{} inside MULTI is not supported by sealcache",
                super::display_name(cmd.name())
            );
            return self.fail(ProxyError::Unsupported(msg)).await;
        }
        match local {
            Local::Auth => self.auth(cmd).await,
            Local::Hello => self.hello(cmd).await,
            Local::Ping => self.ping(cmd).await,
            Local::Echo => self.reply(bulk(cmd.args[1].clone())).await,
            Local::Quit => {
                self.reply(reply::ok()).await;
                self.push_close().await;
                Flow::Close
            }
            Local::Reset => self.reset().await,
            Local::Select => self.select(cmd).await,
            Local::Info => self.info(cmd).await,
            Local::Command => self.introspect(cmd).await,
            Local::ConfigGet => {
                if self.ctx.backends[default].serves(cmd.spec) {
                    self.forward(
                        cmd,
                        Encoding::Args,
                        Post::RedactConfig,
                        NullStyle::Bulk,
                        default,
                    )
                    .await
                } else {
                    // A store that is not Redis has no Redis parameters to show.
                    let empty = match self.proto {
                        Protocol::Resp3 => map(Vec::new()),
                        Protocol::Resp2 => array(Vec::new()),
                    };
                    self.reply(empty).await
                }
            }
            Local::WhoAmI => {
                self.reply(bulk(self.user.clone().unwrap_or_default()))
                    .await
            }
            Local::ClientId
            | Local::ClientGetName
            | Local::ClientSetName
            | Local::ClientSetInfo
            | Local::ClientInfo
            | Local::ClientList
            | Local::ClientNoOp
            | Local::ClientHelp => self.client(cmd, local).await,
        }
    }

    /// INFO: the default backend's sections when it is a Redis, then
    /// sealcache's own (`# Proxy`: backends, routes, encryption).
    async fn info(&mut self, cmd: Command) -> Flow {
        let default = self.ctx.default_backend_index();
        if self.ctx.backends[default].serves(cmd.spec) {
            return self
                .forward(
                    cmd,
                    Encoding::Args,
                    Post::ProxyInfo,
                    NullStyle::Bulk,
                    default,
                )
                .await;
        }
        let text = format!(
            "# Server\r\nredis_version:{}\r\nredis_mode:standalone\r\n\r\n{}",
            COMPATIBLE_VERSION,
            self.ctx.proxy_info()
        );
        let frame = match self.proto {
            Protocol::Resp3 => reply::verbatim_text(text),
            Protocol::Resp2 => bulk(Bytes::from(text)),
        };
        self.reply(frame).await
    }

    /// The COMMAND family, answered from the command table: nothing reaches
    /// the upstream (GETKEYS carries values), and what is listed is what
    /// this client may run.
    async fn introspect(&mut self, cmd: Command) -> Flow {
        let allowed = |name: &str| self.admin_allowed(name);
        match crate::commands::introspect::answer(&cmd.args, self.proto, &allowed) {
            // Already encoded for the client's protocol; the empty array is
            // only a stand-in the writer passes over when raw bytes are given.
            Ok(encoded) => {
                let reply = crate::backend::Reply {
                    frame: array(vec![]),
                    raw: Some(encoded),
                    undecoded: false,
                };
                self.push(super::Slot {
                    reply: super::SlotReply::Relayed(reply),
                    proto: self.proto,
                    nulls: reply::NullStyle::Bulk,
                    post: Post::None,
                })
                .await;
                Flow::Continue
            }
            Err(e) => self.fail(ProxyError::Redis(e.to_string())).await,
        }
    }

    /// Checks credentials, throttling failures per address. Returns whether they were right.
    async fn login(&mut self, user: &[u8], password: &[u8]) -> bool {
        let shown = crate::logging::Untrusted(user);
        let user = String::from_utf8_lossy(user).into_owned();
        let ip = self.peer.addr.map(|a| a.ip());
        if self.ctx.auth.verify(&user, password).await {
            self.ctx.auth.record_success(ip);
            tracing::info!(auth.user = %shown, "client authenticated");
            self.user = Some(user);
            true
        } else {
            self.ctx
                .stats
                .auth_failures
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let delay = self.ctx.auth.record_failure(ip);
            tracing::warn!(auth.user = %shown, delay_ms = delay.as_millis() as u64, "authentication failed");
            tokio::time::sleep(delay).await;
            false
        }
    }

    async fn auth(&mut self, cmd: Command) -> Flow {
        let (user, password) = match cmd.args.len() {
            2 => (
                Bytes::from_static(crate::auth::DEFAULT_USER.as_bytes()),
                &cmd.args[1],
            ),
            3 => (cmd.args[1].clone(), &cmd.args[2]),
            _ => return self.reply(reply::error("ERR syntax error")).await,
        };
        if self.login(&user, password).await {
            self.reply(reply::ok()).await
        } else {
            self.reply(ProxyError::WrongPass.to_frame()).await
        }
    }

    async fn hello(&mut self, cmd: Command) -> Flow {
        let mut proto = None;
        let mut credentials = None;
        let mut setname = None;
        if let Some(version) = cmd.args.get(1) {
            match std::str::from_utf8(version)
                .ok()
                .and_then(|v| v.parse::<i64>().ok())
            {
                Some(2) => proto = Some(Protocol::Resp2),
                Some(3) => proto = Some(Protocol::Resp3),
                Some(_) => {
                    return self
                        .reply(reply::error("NOPROTO unsupported protocol version"))
                        .await;
                }
                None => {
                    return self
                        .reply(reply::error(
                            "ERR Protocol version is not an integer or out of range",
                        ))
                        .await;
                }
            }
            let mut i = 2;
            while i < cmd.args.len() {
                let option = String::from_utf8_lossy(&cmd.args[i]).to_ascii_lowercase();
                match option.as_str() {
                    "auth" if i + 2 < cmd.args.len() => {
                        credentials = Some((cmd.args[i + 1].clone(), cmd.args[i + 2].clone()));
                        i += 3;
                    }
                    "setname" if i + 1 < cmd.args.len() => {
                        // Checked before AUTH runs: a HELLO that fails changes nothing.
                        if !valid_client_name(&cmd.args[i + 1]) {
                            return self.reply(reply::error(CLIENT_NAME_ERROR)).await;
                        }
                        setname = Some(cmd.args[i + 1].clone());
                        i += 2;
                    }
                    _ => {
                        let msg = format!(
                            "ERR Syntax error in HELLO option '{}'",
                            String::from_utf8_lossy(&cmd.args[i])
                        );
                        return self.reply(reply::error(msg)).await;
                    }
                }
            }
        }
        if let Some((user, password)) = credentials
            && !self.login(&user, &password).await
        {
            return self.reply(ProxyError::WrongPass.to_frame()).await;
        }
        if self.user.is_none() {
            return self.reply(reply::error(HELLO_NOAUTH)).await;
        }
        if let Some(name) = setname {
            self.name = (!name.is_empty()).then_some(name);
        }
        if let Some(proto) = proto {
            self.set_proto(proto);
        }
        let version = self
            .ctx
            .default_backend()
            .server_version()
            .unwrap_or_else(|| COMPATIBLE_VERSION.into());
        let info = map(vec![
            (bulk("server"), bulk("redis")),
            (bulk("version"), bulk(version)),
            (bulk("proto"), int(self.proto.version())),
            (bulk("id"), int(self.id as i64)),
            (bulk("mode"), bulk("standalone")),
            (bulk("role"), bulk("master")),
            (bulk("modules"), array(vec![])),
        ]);
        self.reply(info).await
    }

    async fn ping(&mut self, cmd: Command) -> Flow {
        if cmd.args.len() > 2 {
            return self
                .reply(reply::error(
                    "ERR wrong number of arguments for 'ping' command",
                ))
                .await;
        }
        if self.proto == Protocol::Resp2 && self.pubsub.as_ref().is_some_and(|p| p.active()) {
            let message = cmd.args.get(1).cloned().unwrap_or_default();
            return self.reply(array(vec![bulk("pong"), bulk(message)])).await;
        }
        match cmd.args.get(1) {
            Some(message) => self.reply(bulk(message.clone())).await,
            None => self.reply(reply::simple("PONG")).await,
        }
    }

    /// SELECT is checked by the upstream (which knows its database count)
    /// without moving the shared connection off its database.
    async fn select(&mut self, cmd: Command) -> Flow {
        let Some(db) = std::str::from_utf8(&cmd.args[1])
            .ok()
            .and_then(|d| d.parse::<u32>().ok())
        else {
            let msg = if std::str::from_utf8(&cmd.args[1])
                .ok()
                .and_then(|d| d.parse::<i64>().ok())
                .is_some()
            {
                "ERR DB index is out of range"
            } else {
                "ERR value is not an integer or out of range"
            };
            return self.reply(reply::error(msg)).await;
        };
        let backend = self.ctx.default_backend().clone();
        let index = self.ctx.default_backend_index();
        if db != 0
            && !backend
                .capabilities()
                .has(crate::backend::Capability::Databases)
        {
            return self
                .fail(crate::backend::not_supported("SELECT", backend.as_ref()))
                .await;
        }
        let (mut request, rx) = Request::new(cmd.args, self.db);
        request.kind = RequestKind::SelectProbe;
        if self.lane(index).send(request).is_err() {
            let lost = ProxyError::UpstreamLost {
                upstream: backend.name().to_string(),
                reason: "lane closed".into(),
            };
            return self.fail(lost).await;
        }
        let timeout = backend.command_timeout();
        let deadline = tokio::time::Instant::now() + timeout;
        let result = crate::backend::await_reply(rx, Some(deadline), backend.name(), timeout).await;
        match result {
            Ok(r) if error_text(&r.frame).is_none() => {
                self.db = db;
                self.reply(reply::ok()).await
            }
            Ok(r) => self.reply(r.frame).await,
            Err(e) => self.fail(e).await,
        }
    }

    async fn client(&mut self, cmd: Command, local: Local) -> Flow {
        match local {
            Local::ClientId => self.reply(int(self.id as i64)).await,
            Local::ClientGetName => match &self.name {
                Some(name) => self.reply(bulk(name.clone())).await,
                None => self.reply(null()).await,
            },
            Local::ClientSetName => {
                let name = cmd.args[2].clone();
                if !valid_client_name(&name) {
                    return self.reply(reply::error(CLIENT_NAME_ERROR)).await;
                }
                self.name = (!name.is_empty()).then_some(name);
                self.reply(reply::ok()).await
            }
            Local::ClientSetInfo => {
                // As redis-server 7.2: the attribute first, then the value, named as sent.
                let attr = &cmd.args[2];
                let value = cmd.args[3].clone();
                let lib_name = attr.eq_ignore_ascii_case(b"lib-name");
                if !lib_name && !attr.eq_ignore_ascii_case(b"lib-ver") {
                    let msg = format!(
                        "ERR Unrecognized option '{}'",
                        String::from_utf8_lossy(attr)
                    );
                    return self.reply(reply::error(msg)).await;
                }
                if !valid_client_name(&value) {
                    let msg = format!(
                        "ERR {} cannot contain spaces, newlines or special characters.",
                        String::from_utf8_lossy(attr)
                    );
                    return self.reply(reply::error(msg)).await;
                }
                if lib_name {
                    self.lib_name = Some(value);
                } else {
                    self.lib_ver = Some(value);
                }
                self.reply(reply::ok()).await
            }
            Local::ClientInfo | Local::ClientList => self.reply(bulk(self.client_line())).await,
            Local::ClientNoOp => self.reply(reply::ok()).await,
            Local::ClientHelp => {
                let lines = [
                    "CLIENT <subcommand> [<arg> ...]. Subcommands answered by sealcache:",
                    "ID, GETNAME, SETNAME <name>, SETINFO <LIB-NAME|LIB-VER> <value>, INFO, LIST (this connection only), NO-EVICT, NO-TOUCH, HELP",
                ];
                self.reply(array(lines.iter().map(|l| reply::simple(l)).collect()))
                    .await
            }
            _ => {
                let msg = format!(
                    "{} is not handled by sealcache",
                    super::display_name(cmd.name())
                );
                self.fail(ProxyError::Unsupported(msg)).await
            }
        }
    }

    /// This connection as one line of CLIENT LIST.
    fn client_line(&self) -> String {
        let text = |b: &Option<Bytes>| {
            b.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default()
        };
        let (sub, psub, ssub) = self
            .pubsub
            .as_ref()
            .map(|p| p.counts())
            .unwrap_or((0, 0, 0));
        format!(
            "id={} addr={} laddr={} name={} db={} sub={} psub={} ssub={} multi={} resp={} user={} lib-name={} lib-ver={}\n",
            self.id,
            self.peer.describe(),
            self.peer.local,
            text(&self.name),
            self.db,
            sub,
            psub,
            ssub,
            if self.multi.is_some() { 0 } else { -1 },
            self.proto.version(),
            self.user.as_deref().unwrap_or(""),
            text(&self.lib_name),
            text(&self.lib_ver),
        )
    }
}

const CLIENT_NAME_ERROR: &str =
    "ERR Client names cannot contain spaces, newlines or special characters.";

/// Redis accepts printable ASCII without spaces in client names.
fn valid_client_name(name: &[u8]) -> bool {
    name.iter().all(|&c| (b'!'..=b'~').contains(&c))
}
