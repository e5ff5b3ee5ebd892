//! What a backend can do beyond ordinary commands. Abilities only some stores
//! have are declared, not assumed: a command that needs one the route's
//! backend lacks is refused with one error naming the command, the backend's
//! kind and its name.

use std::fmt;

use crate::commands::{CommandSpec, Dispatch, Emulation, Policy};

/// The kinds of store sealcache can put a route on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    Redis,
    Memory,
    DynamoDb,
}

impl BackendKind {
    pub const ALL: [BackendKind; 3] = [
        BackendKind::Redis,
        BackendKind::Memory,
        BackendKind::DynamoDb,
    ];

    /// As written in the configuration's `type:` and shown in INFO.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Redis => "redis",
            BackendKind::Memory => "memory",
            BackendKind::DynamoDb => "dynamodb",
        }
    }
}

impl BackendKind {
    /// What every backend of this kind can do.
    pub fn capabilities(self) -> Capabilities {
        match self {
            // Scripts stay out everywhere: they would run on ciphertext (the
            // table rejects them).
            BackendKind::Redis | BackendKind::Memory => Capabilities::of(&[
                Capability::Transactions,
                Capability::Blocking,
                Capability::PubSub,
                Capability::Databases,
            ]),
            BackendKind::DynamoDb => Capabilities::NONE,
        }
    }

    /// Whether a backend of this kind runs `spec` when it is sent to it
    /// (the command table's column for this kind). Emulated commands run
    /// through the read-modify-write every backend provides.
    pub fn serves(self, spec: &CommandSpec) -> bool {
        match self {
            BackendKind::Redis => true,
            BackendKind::Memory => {
                emulated(spec) || crate::backend::memory::commands::supports(spec.name)
            }
            BackendKind::DynamoDb => {
                emulated(spec) || crate::backend::dynamodb::supports(spec.name)
            }
        }
    }

    /// Whether a client can use `spec` on a route of this kind: what
    /// `docs/commands.md` shows per kind. Commands sealcache answers itself
    /// work everywhere; rejected ones nowhere; the rest need the kind to
    /// serve them and to have what they need (`XREAD … BLOCK` needs
    /// blocking only with `BLOCK`, which this does not see).
    pub fn supports(self, spec: &CommandSpec) -> bool {
        match (spec.dispatch, spec.policy) {
            (_, Policy::Reject(_)) => false,
            (Dispatch::Local(_), _) => true,
            _ => {
                self.serves(spec)
                    && spec
                        .needs()
                        .is_none_or(|needed| self.capabilities().has(needed))
            }
        }
    }
}

/// A command sealcache computes through the read-modify-write every backend
/// provides (INCRBYFLOAT, APPEND, RENAME…), not one the session answers.
fn emulated(spec: &CommandSpec) -> bool {
    matches!(spec.policy, Policy::Emulate(e) if e != Emulation::Session)
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One ability a command may need from its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Capability {
    /// A connection of the client's own that keeps state: MULTI/EXEC/WATCH.
    Transactions,
    /// Commands that wait for data: BLPOP, BZPOPMIN, XREAD BLOCK, WAIT…
    Blocking,
    /// SUBSCRIBE and PUBLISH.
    PubSub,
    /// More than one database: SELECT n, MOVE, SWAPDB, COPY … DB.
    Databases,
    /// Server-side scripts and functions.
    Scripts,
}

impl Capability {
    pub const ALL: [Capability; 5] = [
        Capability::Transactions,
        Capability::Blocking,
        Capability::PubSub,
        Capability::Databases,
        Capability::Scripts,
    ];

    fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Transactions => "transactions",
            Capability::Blocking => "blocking",
            Capability::PubSub => "pubsub",
            Capability::Databases => "databases",
            Capability::Scripts => "scripts",
        }
    }
}

/// The set of capabilities one backend declares.
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct Capabilities(u8);

impl Capabilities {
    pub const NONE: Capabilities = Capabilities(0);

    pub fn of(list: &[Capability]) -> Capabilities {
        Capabilities(list.iter().fold(0, |bits, c| bits | c.bit()))
    }

    pub fn has(self, capability: Capability) -> bool {
        self.0 & capability.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Capability> {
        Capability::ALL.into_iter().filter(move |c| self.has(*c))
    }
}

impl fmt::Debug for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set()
            .entries(self.iter().map(Capability::as_str))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_are_a_set() {
        let caps = Capabilities::of(&[Capability::Blocking, Capability::PubSub]);
        assert!(caps.has(Capability::Blocking) && caps.has(Capability::PubSub));
        assert!(!caps.has(Capability::Transactions));
        assert_eq!(format!("{caps:?}"), "{\"blocking\", \"pubsub\"}");
        assert!(Capabilities::NONE.iter().next().is_none());
    }
}
