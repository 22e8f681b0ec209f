//! Prints the proposer and the tags of every validator for the first heights of a small chain
//! whose validator set changes at height 6.
//!
//! `cargo run -p mempulse-schedule --example proposers`

use mempulse_primitives::{Address, Height, ValidatorId};
use mempulse_schedule::{Schedule, Validator};

fn validator(id: u8, power: u64) -> Validator {
    let mut address = [0u8; 20];
    address[19] = id;
    Validator::new(ValidatorId(u64::from(id)), Address(address), power)
}

fn main() -> Result<(), mempulse_schedule::Error> {
    let mut schedule =
        Schedule::genesis(Height(1), &[validator(1, 1), validator(2, 2), validator(3, 3)])?;
    // At height 6 validator 4 joins with power 4 and validator 1 leaves (power 0).
    schedule.add_changes(Height(6), &[validator(4, 4), validator(1, 0)])?;
    let mut out = String::new();
    for at in schedule.tags(Height(1))?.take(12) {
        let tags: Vec<String> = at.tags.iter().map(|(id, tags)| format!("{id}:[{tags}]")).collect();
        out.push_str(&format!(
            "height {:>2}  proposer {}  {}\n",
            at.height,
            at.proposer,
            tags.join(" ")
        ));
    }
    #[expect(clippy::print_stdout, reason = "an example prints its result")]
    {
        print!("{out}");
    }
    Ok(())
}
