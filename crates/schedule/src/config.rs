//! The validators file every node and tx source shares, and the slot configuration.
//!
//! ```toml
//! initial-height = 1        # first height of the chain (0 means 1, as in CometBFT)
//! slot-duration-ms = 500    # how long a proposer may take before the round moves on
//!
//! [[validators]]
//! id = 1
//! address = "0x00000000000000000000000000000000000000a1"
//! power = 10
//! nodes = ["1@127.0.0.1:7400", "2@127.0.0.1:7401", "3@127.0.0.1:7402"]
//! # Optional: each member's tx-stream and peer listener, where tx sources and the other
//! # validators' nodes connect (same syntax as `nodes`, which stay the Raft addresses).
//! streams = ["1@127.0.0.1:7500", "2@127.0.0.1:7501", "3@127.0.0.1:7502"]
//!
//! # A change set: entries with the same height form one set, applied to the validator
//! # set of that height (the first height that includes it). Power 0 removes.
//! [[changes]]
//! height = 100
//! id = 4
//! address = "0x00000000000000000000000000000000000000a4"
//! power = 5
//! ```
//!
//! Parsing takes a `&str`; reading the file is the caller's job (this crate does no IO).

use std::{collections::BTreeMap, time::Duration};

use mempulse_primitives::{Address, Height, ValidatorId};
use serde::{Deserialize, Serialize};

use crate::{Error, NodeAddr, Result, Schedule, Validator};

/// The slot duration when none is configured.
pub const DEFAULT_SLOT_DURATION: Duration = Duration::from_millis(500);

/// Slot clock settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlotConfig {
    /// How long a proposer may take before its slot counts as missed.
    pub slot_duration: Duration,
}

impl Default for SlotConfig {
    /// [`DEFAULT_SLOT_DURATION`].
    fn default() -> Self {
        Self { slot_duration: DEFAULT_SLOT_DURATION }
    }
}

/// The validators file (see the module docs for an example).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValidatorsConfig {
    /// The chain's first height (0 means 1).
    #[serde(default = "default_initial_height")]
    pub initial_height: u64,
    /// The slot duration in milliseconds (positive).
    #[serde(default = "default_slot_duration_ms")]
    pub slot_duration_ms: u64,
    /// The genesis validators.
    pub validators: Vec<ValidatorEntry>,
    /// Change sets, by the height they take effect at.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<ChangeEntry>,
}

const fn default_initial_height() -> u64 {
    1
}

const fn default_slot_duration_ms() -> u64 {
    500
}

impl Default for ValidatorsConfig {
    /// The embedded default: one validator (id 1, power 1) whose one node is the default Raft
    /// address of `mempulse run`.
    fn default() -> Self {
        Self {
            initial_height: default_initial_height(),
            slot_duration_ms: default_slot_duration_ms(),
            validators: vec![ValidatorEntry {
                id: 1,
                address: Address([1; 20]).to_string(),
                power: 1,
                nodes: vec!["127.0.0.1:7400".to_owned()],
                streams: Vec::new(),
            }],
            changes: Vec::new(),
        }
    }
}

/// One validator of the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ValidatorEntry {
    /// Validator id.
    pub id: u64,
    /// 20-byte address, hex with or without `0x`.
    pub address: String,
    /// Voting power (positive).
    pub power: u64,
    /// Member nodes, `host:port` or `node-id@host:port` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Member nodes' tx-stream and peer listeners, `node-id@host:port` (or `host:port`) each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<String>,
}

/// One entry of a change set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ChangeEntry {
    /// The first height whose validator set includes the change.
    pub height: u64,
    /// Validator id (must match the set's id for a known address).
    pub id: u64,
    /// 20-byte address, hex with or without `0x`: the validator the entry adds, updates or
    /// removes.
    pub address: String,
    /// New voting power; 0 removes the validator.
    pub power: u64,
    /// Member nodes, `host:port` or `node-id@host:port` each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Member nodes' tx-stream and peer listeners, `node-id@host:port` (or `host:port`) each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub streams: Vec<String>,
}

/// The text fields of one validator entry (genesis or change).
struct EntryText<'a> {
    id: u64,
    address: &'a str,
    power: u64,
    nodes: &'a [String],
    streams: &'a [String],
}

fn parse_addrs(id: ValidatorId, texts: &[String]) -> Result<Vec<NodeAddr>> {
    texts
        .iter()
        .map(|text| {
            text.parse::<NodeAddr>().map_err(|kind| Error::BadNode { id, text: text.clone(), kind })
        })
        .collect()
}

fn to_validator(entry: &EntryText<'_>) -> Result<Validator> {
    let id = ValidatorId(entry.id);
    let address = Address::from_hex(entry.address).map_err(|source| Error::BadAddress {
        id,
        text: entry.address.to_owned(),
        source,
    })?;
    let nodes = parse_addrs(id, entry.nodes)?;
    let streams = parse_addrs(id, entry.streams)?;
    Ok(Validator { id, address, power: entry.power, nodes, streams })
}

impl ValidatorEntry {
    fn text(&self) -> EntryText<'_> {
        EntryText {
            id: self.id,
            address: &self.address,
            power: self.power,
            nodes: &self.nodes,
            streams: &self.streams,
        }
    }
}

impl ChangeEntry {
    fn text(&self) -> EntryText<'_> {
        EntryText {
            id: self.id,
            address: &self.address,
            power: self.power,
            nodes: &self.nodes,
            streams: &self.streams,
        }
    }
}

impl ValidatorsConfig {
    /// Parses the file's text.
    ///
    /// # Errors
    /// [`Error::Parse`] for text that is not TOML of this shape (unknown keys included).
    pub fn from_toml_str(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|source| Error::Parse { source })
    }

    /// The initial height (a configured 0 is 1).
    #[must_use]
    pub const fn initial_height(&self) -> Height {
        Height(if self.initial_height == 0 { 1 } else { self.initial_height })
    }

    /// The slot settings.
    ///
    /// # Errors
    /// [`Error::ZeroSlotDuration`].
    pub const fn slot_config(&self) -> Result<SlotConfig> {
        if self.slot_duration_ms == 0 {
            return Err(Error::ZeroSlotDuration);
        }
        Ok(SlotConfig { slot_duration: Duration::from_millis(self.slot_duration_ms) })
    }

    /// The genesis validators, parsed (not yet checked as a set).
    ///
    /// # Errors
    /// [`Error::BadAddress`], [`Error::BadNode`].
    pub fn validators(&self) -> Result<Vec<Validator>> {
        self.validators.iter().map(|v| to_validator(&v.text())).collect()
    }

    /// The change sets by height, each in file order.
    ///
    /// # Errors
    /// [`Error::BadAddress`], [`Error::BadNode`].
    pub fn changes(&self) -> Result<BTreeMap<Height, Vec<Validator>>> {
        let mut out: BTreeMap<Height, Vec<Validator>> = BTreeMap::new();
        for c in &self.changes {
            let v = to_validator(&c.text())?;
            out.entry(Height(c.height)).or_default().push(v);
        }
        Ok(out)
    }

    /// The schedule the file describes: the genesis set at the initial height and every change
    /// set, all validated.
    ///
    /// # Errors
    /// Any parse error of [`ValidatorsConfig::validators`] or [`ValidatorsConfig::changes`],
    /// any error of [`Schedule::genesis`] or [`Schedule::add_changes`], and
    /// [`Error::ZeroSlotDuration`] (so one call checks the whole file).
    pub fn to_schedule(&self) -> Result<Schedule> {
        self.slot_config()?;
        let mut schedule = Schedule::genesis(self.initial_height(), &self.validators()?)?;
        for (height, changes) in self.changes()? {
            schedule.add_changes(height, &changes)?;
        }
        Ok(schedule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
initial-height = 5
slot-duration-ms = 250

[[validators]]
id = 1
address = "0x00000000000000000000000000000000000000a1"
power = 10
nodes = ["1@127.0.0.1:7400", "127.0.0.1:7401"]
streams = ["1@127.0.0.1:7500", "2@127.0.0.1:7501"]

[[validators]]
id = 2
address = "00000000000000000000000000000000000000a2"
power = 5

[[changes]]
height = 9
id = 3
address = "0x00000000000000000000000000000000000000a3"
power = 7
streams = ["5@127.0.0.1:7503"]

[[changes]]
height = 9
id = 2
address = "0x00000000000000000000000000000000000000a2"
power = 0
"#;

    #[test]
    fn parses_the_documented_shape() {
        let config = ValidatorsConfig::from_toml_str(FILE).unwrap();
        assert_eq!(config.initial_height(), Height(5));
        assert_eq!(config.slot_config().unwrap().slot_duration, Duration::from_millis(250));
        let validators = config.validators().unwrap();
        assert_eq!(validators.len(), 2);
        assert_eq!(validators[0].nodes[0].to_string(), "1@127.0.0.1:7400");
        let streams: Vec<String> = validators[0].streams.iter().map(ToString::to_string).collect();
        assert_eq!(streams, ["1@127.0.0.1:7500", "2@127.0.0.1:7501"]);
        assert!(validators[1].streams.is_empty(), "streams are optional");
        let changes = config.changes().unwrap();
        assert_eq!(changes.keys().copied().collect::<Vec<_>>(), [Height(9)]);
        assert_eq!(changes[&Height(9)][0].streams[0].node, Some(mempulse_primitives::NodeId(5)));
        let schedule = config.to_schedule().unwrap();
        assert_eq!(schedule.base_height(), Height(5));
        let at9 = schedule.set_at(Height(9)).unwrap();
        assert_eq!(at9.ids().collect::<Vec<_>>(), [ValidatorId(1), ValidatorId(3)]);
    }

    #[test]
    fn defaults_and_the_embedded_default() {
        let config = ValidatorsConfig::from_toml_str(
            "[[validators]]\nid = 7\naddress = \"0x0000000000000000000000000000000000000007\"\npower = 1\n",
        )
        .unwrap();
        assert_eq!(config.initial_height(), Height(1));
        assert_eq!(config.slot_config().unwrap(), SlotConfig::default());
        let schedule = ValidatorsConfig::default().to_schedule().unwrap();
        assert_eq!(schedule.proposer(Height(1)).unwrap(), ValidatorId(1));
    }

    #[test]
    fn bad_files_are_typed_errors() {
        let parse = |text: &str| ValidatorsConfig::from_toml_str(text);
        assert!(matches!(parse("validators = 3"), Err(Error::Parse { .. })));
        assert!(matches!(parse(""), Err(Error::Parse { .. })));
        let unknown = "[[validators]]\nid = 1\naddress = \"0x01\"\npower = 1\nweight = 2\n";
        assert!(matches!(parse(unknown), Err(Error::Parse { .. })));
        let check = |text: &str| parse(text).unwrap().to_schedule().unwrap_err();
        let short = "[[validators]]\nid = 1\naddress = \"0x01\"\npower = 1\n";
        assert!(matches!(check(short), Error::BadAddress { id: ValidatorId(1), .. }));
        let addr = "0x00000000000000000000000000000000000000a1";
        let node =
            format!("[[validators]]\nid = 1\naddress = \"{addr}\"\npower = 1\nnodes = [\"x\"]\n");
        assert!(matches!(check(&node), Error::BadNode { .. }));
        let stream = format!(
            "[[validators]]\nid = 1\naddress = \"{addr}\"\npower = 1\nstreams = [\"1@h\"]\n"
        );
        assert!(matches!(
            check(&stream),
            Error::BadNode { kind: crate::NodeAddrErrorKind::MissingPort, .. }
        ));
        let zero = format!("[[validators]]\nid = 1\naddress = \"{addr}\"\npower = 0\n");
        assert_eq!(check(&zero), Error::ZeroPower { id: ValidatorId(1) });
        let empty = "validators = []\n";
        assert_eq!(check(empty), Error::EmptySet);
        let slot = format!("slot-duration-ms = 0\n{}", &zero.replace("power = 0", "power = 1"));
        assert_eq!(check(&slot), Error::ZeroSlotDuration);
        let early = format!(
            "{}[[changes]]\nheight = 1\nid = 1\naddress = \"{addr}\"\npower = 2\n",
            zero.replace("power = 0", "power = 1")
        );
        assert_eq!(
            check(&early),
            Error::ChangeHeightNotAscending { height: Height(1), after: Height(1) }
        );
    }
}
