//! The keyring: every key id this process can open, and the primary one new
//! values are sealed under. Rotation (later) adds keys and moves the primary.

use super::{DataKeys, KeyError, KeyId, MasterKey};

/// Key ids → data keys, with one primary. Small (a handful of keys during a
/// rotation), so a vector scan beats hashing a 4-byte id.
#[derive(Debug)]
pub struct KeyRing {
    primary: KeyId,
    keys: Vec<DataKeys>,
}

impl KeyRing {
    /// A keyring holding the data keys of one master key, as primary.
    pub fn from_master(master: &MasterKey) -> KeyRing {
        KeyRing::with_primary(DataKeys::from_master(master))
    }

    pub fn with_primary(keys: DataKeys) -> KeyRing {
        KeyRing {
            primary: keys.id(),
            keys: vec![keys],
        }
    }

    /// Adds decrypt-capable keys (not primary). Refuses a duplicate id, which
    /// would make envelopes ambiguous.
    pub fn insert(&mut self, keys: DataKeys) -> Result<(), KeyError> {
        if self.get(keys.id()).is_some() {
            return Err(KeyError::DuplicateKeyId(keys.id()));
        }
        self.keys.push(keys);
        Ok(())
    }

    /// Makes `id` the key new values are sealed under.
    pub fn set_primary(&mut self, id: KeyId) -> Result<(), KeyError> {
        if self.get(id).is_none() {
            return Err(KeyError::UnknownKeyId(id));
        }
        self.primary = id;
        Ok(())
    }

    pub fn primary_id(&self) -> KeyId {
        self.primary
    }

    pub fn primary(&self) -> &DataKeys {
        // The constructor and set_primary keep `primary` in `keys`.
        self.keys
            .iter()
            .find(|k| k.id() == self.primary)
            .unwrap_or(&self.keys[0])
    }

    pub fn get(&self, id: KeyId) -> Option<&DataKeys> {
        self.keys.iter().find(|k| k.id() == id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &DataKeys> {
        self.keys.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_insert_and_lookup() {
        let a = MasterKey::from_bytes(&[1; 32]);
        let b = MasterKey::from_bytes(&[2; 32]);
        let mut ring = KeyRing::from_master(&a);
        let (ida, idb) = (
            DataKeys::from_master(&a).id(),
            DataKeys::from_master(&b).id(),
        );
        assert_eq!(ring.primary_id(), ida);
        assert!(ring.get(idb).is_none());
        assert!(matches!(ring.set_primary(idb), Err(KeyError::UnknownKeyId(id)) if id == idb));

        ring.insert(DataKeys::from_master(&b)).unwrap();
        assert!(matches!(
            ring.insert(DataKeys::from_master(&b)),
            Err(KeyError::DuplicateKeyId(_))
        ));
        ring.set_primary(idb).unwrap();
        assert_eq!(ring.primary().id(), idb);
        assert_eq!(ring.get(ida).unwrap().id(), ida);
        assert_eq!(ring.iter().count(), 2);
        assert!(format!("{ring:?}").contains("<redacted>"));
    }
}
