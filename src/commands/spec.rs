//! The shape of one row of the command table: how a command is routed to the
//! upstream and what sealcache must do to its values.

/// Where a command runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dispatch {
    /// On the client's multiplexed, pipelined pool connection.
    Shared,
    /// Answered by sealcache from session state (AUTH, HELLO, SELECT, CLIENT SETNAME…).
    Local,
    /// MULTI/EXEC/DISCARD/WATCH/UNWATCH: pins the client to a dedicated connection
    /// until the transaction or watch ends.
    Transaction,
    /// May block the connection: runs on a dedicated connection for its duration.
    Blocking,
    /// Blocks only when a `BLOCK` argument is present (XREAD, XREADGROUP).
    BlockingWithOption,
    /// Enters or changes Pub/Sub subscriptions: pins a dedicated connection.
    Subscribe,
    /// Has subcommands; the subcommand's row decides.
    Container,
}

/// What sealcache does to a command's values. Every command has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Keys and metadata only: forwarded unchanged.
    Pass,
    /// Carries values: `ValueRule` says which arguments and reply parts are values.
    Encrypt(ValueRule),
    /// Cannot run on ciphertext or on the shared upstream: sealcache does it itself.
    Emulate(Emulation),
    /// Cannot be made correct on encrypted data; the reason is shown to the client.
    Reject(&'static str),
    /// Reconfigures or wipes the upstream: rejected unless allowed in configuration.
    Admin,
}

/// Which arguments and reply parts of an encrypting command are values.
/// Interpreted by the value-encryption layer; one variant per argument shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueRule {
    /// Placeholder until the value-encryption layer classifies the command.
    Unclassified,
}

/// Commands sealcache answers or performs itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Emulation {
    /// Session and connection commands answered from session state.
    Session,
}

/// Redis's legacy key specification: positions of the keys among the arguments
/// (0 is the command name). `last` < 0 counts from the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyPositions {
    pub first: i16,
    pub last: i16,
    pub step: i16,
}

#[derive(Debug, Clone, Copy)]
pub struct CommandSpec {
    /// Upper case; subcommands as `CONTAINER|SUB` (as `COMMAND` names them).
    pub name: &'static str,
    /// Redis arity: positive is exact, negative is a minimum; counts the name
    /// (and for subcommands, the container name too).
    pub arity: i16,
    pub keys: KeyPositions,
    /// Key positions depend on other arguments (Redis's `movablekeys`).
    pub movable_keys: bool,
    pub dispatch: Dispatch,
    pub policy: Policy,
    /// RESP3 null maps to RESP2's null *array* (`*-1`), not the null bulk string.
    pub null_array: bool,
}

impl CommandSpec {
    /// Whether `argc` arguments (name included) satisfy the arity.
    pub fn arity_ok(&self, argc: usize) -> bool {
        let arity = self.arity as isize;
        if arity >= 0 {
            argc as isize == arity
        } else {
            argc as isize >= -arity
        }
    }
}
